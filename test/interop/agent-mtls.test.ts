import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RampartAgent } from '../../src/agent/agent.js';
import { ManualScheduler } from '../../src/core/scheduler.js';
import { ManualClock } from '../../src/core/clock.js';
import { spiffeIdOf } from '../../src/pki/spiffe.js';
import { makeCsr } from '../support/pki.js';
import { runTool } from '../support/processes.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * What attestation and the agent issue, as OpenSSL sees it: the attested agent's own SVID and the
 * workload SVIDs the agent writes pass `openssl verify -x509_strict -purpose sslclient` (and
 * sslserver) with the written bundle, and two workloads on the host complete an mTLS handshake
 * with `openssl s_client` as the client and Node as the server, each verifying the other's chain.
 */
const TD = 'spiffe://default.rampart.local';

describe('agent-issued SVIDs with openssl', () => {
  let s: TestServer;
  let dir: string;
  let agent: RampartAgent;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-interop-'));
    const admin = { authorization: `Bearer ${s.adminToken}` };
    const token = (await s.app.inject({ method: 'POST', url: '/v1/pki/agent/tokens', headers: admin, payload: {} })).json() as { token: string; spiffe_id: string };
    for (const name of ['api', 'db']) {
      const r = await s.app.inject({ method: 'POST', url: '/v1/pki/registrations', headers: admin, payload: { spiffe_id: `${TD}/ns/pay/sa/${name}`, parent: token.spiffe_id, selectors: [`k8s:sa:pay/${name}`], dns_names: [`${name}.pay.svc`] } });
      ids[name] = (r.json() as { id: string }).id;
    }
    const clock = new ManualClock();
    clock.set(s.clock.now());
    agent = new RampartAgent({ server: s.addr!, caPem: s.runtime.trustBundlePem, dir, attestation: { joinToken: token.token }, clock, scheduler: new ManualScheduler(clock) });
    await agent.start();
  });
  afterAll(async () => {
    await agent?.stop();
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const file = (d: string, f: string) => join(dir, d, f);

  it('passes openssl verify -x509_strict for client and server use: the agent, both workloads, and an attestation answer', async () => {
    for (const d of ['agent', ids.api!, ids.db!]) {
      for (const purpose of ['sslclient', 'sslserver']) {
        const r = await runTool('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', file(d, 'bundle.pem'), '-untrusted', file(d, 'svid.pem'), file(d, 'svid.pem')]);
        expect(`${r.stdout}${r.stderr}`.trim(), `${d} ${purpose}`).toBe(`${file(d, 'svid.pem')}: OK`);
      }
    }
    // The attestation answer on its own, as a client would save it.
    const token = (await s.app.inject({ method: 'POST', url: '/v1/pki/agent/tokens', headers: { authorization: `Bearer ${s.adminToken}` }, payload: {} })).json() as { token: string };
    const attested = (await s.app.inject({ method: 'POST', url: '/v1/pki/agent/attest', payload: { join_token: token.token, csr: (await makeCsr()).pem } })).json() as { certificate: string; ca_chain: string[] };
    writeFileSync(join(dir, 'attested.pem'), attested.certificate);
    writeFileSync(join(dir, 'chain.pem'), attested.ca_chain.join('\n'));
    const r = await runTool('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'chain.pem'), join(dir, 'attested.pem')]);
    expect(r.status, r.stderr).toBe(0);
  });

  it('lets two workloads of the host authenticate each other: openssl s_client (api) to a Node TLS server (db)', async () => {
    const read = (d: string, f: string) => readFileSync(file(d, f), 'utf8');
    const server = tls.createServer({ cert: read(ids.db!, 'svid.pem'), key: read(ids.db!, 'key.pem'), ca: read(ids.db!, 'bundle.pem'), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    const peers: string[] = [];
    server.on('secureConnection', (socket) => {
      peers.push(spiffeIdOf(new x509.X509Certificate(socket.getPeerCertificate().raw)));
      socket.end('hello\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const r = await runTool('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-cert', file(ids.api!, 'svid.pem'), '-key', file(ids.api!, 'key.pem'), '-CAfile', file(ids.api!, 'bundle.pem'), '-verify_return_error', '-brief']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain('Verification: OK');
      expect(peers).toEqual([`${TD}/ns/pay/sa/api`]);
    } finally {
      server.close();
    }
  });
});
