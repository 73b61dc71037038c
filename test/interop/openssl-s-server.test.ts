import 'reflect-metadata';
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { chainPem, createIntermediateCa, createRootCa, issueSvid } from '../../src/pki/ca.js';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { createMtlsAgent, createMtlsDispatcher, createSvidSource, CrlCache, type MtlsOptions, SvidError, type SvidMaterial } from '../../src/sdk/index.js';
import { makeCsr } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The SDK's mTLS clients against a server we did not write: `openssl s_server` presents an SVID
 * the control plane issued, demands a client certificate (`-Verify`, `-verify_return_error`,
 * `-x509_strict`) chaining to the control plane's roots, and answers HTTP (`-www`, whose status
 * page includes the client certificate it accepted). Both `createMtlsAgent` (node:https) and
 * `createMtlsDispatcher` (undici) present a client SVID and check the server's SPIFFE ID against
 * their allow-list; s_server in turn refuses a client SVID from a foreign CA, and, given our CRL,
 * a revoked one.
 */

const SERVER_ID = 'spiffe://default.rampart.local/ns/pay/sa/api';
const CLIENT_ID = 'spiffe://default.rampart.local/ns/web/sa/frontend';

interface SServer {
  readonly url: string;
  /** Everything s_server printed so far, stdout and stderr. */
  output(): string;
  /** Resolves once the output matches (s_server reports a refused handshake after the client has given up). */
  waitFor(pattern: RegExp): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts `openssl s_server` on a port the kernel picks (`-accept 127.0.0.1:0`) and resolves with
 * its address once it prints `ACCEPT host:port`; rejects with its output if it exits first. The
 * timer is only a guard against a hung process: readiness is the ACCEPT line, never a delay.
 */
function startSServer(args: readonly string[]): Promise<SServer> {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<{ pattern: RegExp; resolve: (s: string) => void }>();
  // Should the test runner itself exit first, the process must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.removeListener('exit', killOnExit);
      resolve();
    }),
  );
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters) {
      if (w.pattern.test(out)) {
        waiters.delete(w);
        w.resolve(out);
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const waitFor = (pattern: RegExp) =>
    pattern.test(out)
      ? Promise.resolve(out)
      : new Promise<string>((resolve, reject) => {
          const waiter = { pattern, resolve };
          waiters.add(waiter);
          void exited.then(() => {
            if (waiters.delete(waiter)) reject(new Error(`s_server exited without printing ${pattern}:\n${out}`));
          });
        });
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      void stop();
      reject(new Error(`s_server printed no ACCEPT line within 30 s:\n${out}`));
    }, 30_000);
    waitFor(/^ACCEPT (127\.0\.0\.1:\d+)$/m).then(
      (text) => {
        clearTimeout(guard);
        resolve({ url: `https://${/^ACCEPT (127\.0\.0\.1:\d+)$/m.exec(text)![1]}/`, output: () => out, waitFor, stop });
      },
      (err: Error) => {
        clearTimeout(guard);
        reject(err);
      },
    );
  });
}

/** One GET through `agent`; resolves with status and body, rejects with the connection's error. */
function httpsGet(url: string, agent: https.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('SDK mTLS clients against openssl s_server', () => {
  let server: TestServer;
  let dir: string;
  const f = (name: string) => join(dir, name);
  const servers: SServer[] = [];
  const closers: Array<() => unknown> = [];
  let sServer: SServer;
  let client: SvidMaterial & { serial: string };

  /** CRLs come from the in-process control plane by the path of the SVID's distribution point. */
  const fetchCrl = async (url: string) => {
    const r = await server.app.inject({ method: 'GET', url: new URL(url).pathname });
    if (r.statusCode !== 200) throw new Error(`CRL: HTTP ${r.statusCode}`);
    return r.rawPayload;
  };
  const mtls = (source: SvidMaterial, authorize: MtlsOptions['authorize']): MtlsOptions => ({
    source: createSvidSource(source),
    authorize,
    revocation: new CrlCache({ fetch: fetchCrl, maxStalenessMs: Infinity }),
    controlPlane: false,
  });
  const agentFor = (source: SvidMaterial, authorize: MtlsOptions['authorize']) => {
    const agent = createMtlsAgent(mtls(source, authorize));
    closers.push(() => agent.destroy());
    return agent;
  };
  const dispatcherFor = (source: SvidMaterial, authorize: MtlsOptions['authorize']) => {
    const dispatcher = createMtlsDispatcher(mtls(source, authorize));
    closers.push(() => dispatcher.close());
    return dispatcher;
  };

  async function svidFor(id: string): Promise<SvidMaterial & { serial: string; leafPem: string; intermediatePem: string }> {
    const csr = await makeCsr();
    const r = await server.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: { authorization: `Bearer ${server.adminToken}` }, payload: { csr: csr.pem, spiffe_id: id, ttl: '1h' } });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as { certificate: string; issuing_ca: string; serial_number: string };
    return {
      svidPem: `${body.certificate.trim()}\n${body.issuing_ca.trim()}\n`,
      keyPem: csr.keyPem,
      bundlePem: server.runtime.trustBundlePem,
      serial: body.serial_number,
      leafPem: body.certificate,
      intermediatePem: body.issuing_ca,
    };
  }

  /** s_server with the server SVID, requiring a client certificate that chains to our roots. */
  async function sServerWith(...extra: string[]): Promise<SServer> {
    const s = await startSServer([
      '-cert', f('server.pem'), '-key', f('server.key'), '-cert_chain', f('server-chain.pem'),
      '-CAfile', f('roots.pem'), '-Verify', '4', '-verify_return_error', '-x509_strict',
      '-www', ...extra,
    ]);
    servers.push(s);
    return s;
  }

  beforeAll(async () => {
    server = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'rampart-s-server-'));
    const svid = await svidFor(SERVER_ID);
    writeFileSync(f('server.pem'), svid.leafPem);
    writeFileSync(f('server-chain.pem'), svid.intermediatePem);
    writeFileSync(f('server.key'), svid.keyPem);
    writeFileSync(f('roots.pem'), server.runtime.trustBundlePem);
    client = await svidFor(CLIENT_ID);
    sServer = await sServerWith();
  });
  afterAll(async () => {
    for (const close of closers) await close();
    for (const s of servers) await s.stop();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('createMtlsAgent: s_server accepts the client SVID, and the agent accepts the allowed server ID', async () => {
    const r = await httpsGet(sServer.url, agentFor(client, [SERVER_ID]));
    expect(r.status).toBe(200);
    // s_server's -www page prints the client certificate it verified.
    expect(r.body).toContain('Client certificate');
    expect(r.body).toContain(`URI:${CLIENT_ID}`);
    expect(r.body).not.toContain('no client certificate available');
  });

  it('createMtlsAgent: refuses the server when its SPIFFE ID is not allowed, before sending a request', async () => {
    const err = await httpsGet(sServer.url, agentFor(client, ['spiffe://default.rampart.local/ns/pay/sa/other'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SvidError);
    expect((err as SvidError).code).toBe('svid.forbidden');
    const byCallback = await httpsGet(sServer.url, agentFor(client, (id) => id.startsWith('spiffe://default.rampart.local/ns/web/'))).catch((e: unknown) => e);
    expect((byCallback as SvidError).code).toBe('svid.forbidden');
    expect((await httpsGet(sServer.url, agentFor(client, (id) => id === SERVER_ID))).status).toBe(200);
  });

  it('createMtlsDispatcher (undici): the same acceptance and refusal', async () => {
    const ok = await undiciRequest(sServer.url, { dispatcher: dispatcherFor(client, [SERVER_ID]) });
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.text()).toContain(`URI:${CLIENT_ID}`);
    const err = await undiciRequest(sServer.url, { dispatcher: dispatcherFor(client, ['spiffe://default.rampart.local/ns/pay/sa/other']) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SvidError);
    expect((err as SvidError).code).toBe('svid.forbidden');
  });

  it('s_server refuses a client SVID with the right SPIFFE ID from a foreign CA, for both clients', async () => {
    // An attacker's CA minting our client's ID; the client still trusts our roots for the server.
    const clock = systemClock;
    const root = await createRootCa({ commonName: 'Foreign Root', clock });
    const intermediate = await createIntermediateCa(root, { commonName: 'Foreign Intermediate', clock });
    const keys = await generateKeyPair('ecdsa-p256');
    const leaf = await issueSvid(intermediate, { publicKey: keys.publicKey, spiffeId: parseSpiffeId(CLIENT_ID).id, clock, ttlMs: 3_600_000 });
    const foreign: SvidMaterial = { svidPem: chainPem(leaf, intermediate.certificate), keyPem: await exportPrivateKeyPkcs8Pem(keys.privateKey), bundlePem: server.runtime.trustBundlePem };

    const viaAgent = await httpsGet(sServer.url, agentFor(foreign, [SERVER_ID])).catch((e: unknown) => e);
    expect(viaAgent).toBeInstanceOf(Error);
    expect(viaAgent).not.toBeInstanceOf(SvidError);
    const viaUndici = await undiciRequest(sServer.url, { dispatcher: dispatcherFor(foreign, [SERVER_ID]) }).catch((e: unknown) => e);
    expect(viaUndici).toBeInstanceOf(Error);
    expect(viaUndici).not.toBeInstanceOf(SvidError);
    // s_server says why: the chain does not reach its CA file.
    expect(await sServer.waitFor(/unable to get local issuer certificate/)).toMatch(/certificate verify failed/);
    // And it still serves our own clients afterwards.
    expect((await httpsGet(sServer.url, agentFor(client, [SERVER_ID]))).status).toBe(200);
  });

  it('s_server given our CRL (-CRL, -crl_check) refuses a revoked client SVID and accepts an unrevoked one', async () => {
    const revoked = await svidFor(CLIENT_ID);
    const r = await server.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: { authorization: `Bearer ${server.adminToken}` }, payload: { serial_number: revoked.serial, reason: 'keyCompromise' } });
    expect(r.statusCode).toBe(200);
    writeFileSync(f('crl.pem'), (await server.app.inject({ method: 'GET', url: '/v1/pki/crl?format=pem' })).body);
    const withCrl = await sServerWith('-CRL', f('crl.pem'), '-crl_check');

    const err = await undiciRequest(withCrl.url, { dispatcher: dispatcherFor(revoked, [SERVER_ID]) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await withCrl.waitFor(/certificate revoked/)).toContain('certificate revoked');
    const ok = await undiciRequest(withCrl.url, { dispatcher: dispatcherFor(client, [SERVER_ID]) });
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.text()).toContain(`URI:${CLIENT_ID}`);
  });
});
