import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RAMPART_POLICY_STORE } from '../../src/authz/entities.js';
import { policyHash } from '../../src/authz/seed-policies.js';
import { EventStreamParser, RampartClient, type StreamEvent } from '../../src/sdk/index.js';
import { makeCsr } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * `GET /v1/secrets/events` ends when what opened it stops authenticating: a revoked token before
 * its next event, a revoked workload certificate at the revocation. Real listening server (the
 * certificate must be presented in a TLS handshake), clock at the real time (OpenSSL checks the
 * SVID's validity against it); events are read when the test polls the hub.
 */
let s: TestServer;
const clients: RampartClient[] = [];

async function vault(method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) {
  const res = await s.app.inject({ method, url, headers: { 'x-vault-token': s.adminToken }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
  if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.statusCode === 204 ? undefined : (res.json() as { data: Record<string, unknown>; auth: { client_token: string; accessor: string } });
}

/** Opens the stream; `ended` resolves when the server ends it. */
async function open(c: RampartClient) {
  const seen: StreamEvent[] = [];
  let res: IncomingMessage | undefined;
  let ended!: Promise<void>;
  await new Promise<void>((resolve, reject) => {
    c.stream('/v1/secrets/events').then((r) => {
      res = r;
      ended = new Promise((done) => r.once('end', () => done()).once('close', () => done()));
      const parser = new EventStreamParser(
        (e) => seen.push(e),
        (comment) => comment === 'connected' && resolve(),
      );
      r.setEncoding('utf8').on('data', (chunk: string) => parser.push(chunk));
    }, reject);
  });
  return { seen, ended: () => ended, close: () => res?.destroy() };
}

const paths = (seen: readonly StreamEvent[]) => seen.map((e) => (JSON.parse(e.data) as { path: string }).path);

/** Writes a secret and lets the hub read the log, so an open stream gets (or would get) its event. */
async function change(path: string) {
  await vault('POST', `/v1/secret/data/${path}`, { data: { v: path } });
  await s.runtime.rotation.events.poll();
}

beforeAll(async () => {
  s = await startTestServer({ listen: true });
  await s.runtime.rotation.scheduler.stop();
  await vault('POST', '/v1/sys/mounts/secret', { type: 'kv' });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await s.close();
});

describe('secret event stream after a revocation', () => {
  it('ends the stream of a revoked token before its next event, without waiting for a heartbeat', async () => {
    await vault('PUT', '/v1/sys/policy/watcher', { policy: 'path "sys/events/subscribe/secrets" { capabilities = ["read"] }\npath "secret/data/*" { capabilities = ["read"] }' });
    const auth = (await vault('POST', '/v1/auth/token/create', { policies: ['watcher'] }))!.auth;
    const c = new RampartClient({ addr: s.addr!, token: auth.client_token, caPem: s.runtime.trustBundlePem });
    clients.push(c);
    const stream = await open(c);
    await change('before-token-revoked');
    await expect.poll(() => paths(stream.seen)).toEqual(['before-token-revoked']);

    await vault('POST', '/v1/auth/token/revoke-accessor', { accessor: auth.accessor });
    await change('after-token-revoked');
    await stream.ended();
    expect(paths(stream.seen)).toEqual(['before-token-revoked']);
  });

  it("ends a workload's stream when its certificate is revoked", async () => {
    const id = 'spiffe://default.rampart.local/ns/app/sa/watcher';
    const active = (await s.runtime.stores.policies.active('default', RAMPART_POLICY_STORE))!;
    const policies = {
      'rampart.cedar': `${active.policies['rampart.cedar']}\n@id("secret-watcher")\npermit (principal == Rampart::Workload::"${id}", action == Rampart::Action::"vault:read", resource is Rampart::VaultPath);\n`,
    };
    await s.runtime.stores.policies.insert({
      tenant: 'default',
      store: RAMPART_POLICY_STORE,
      version: active.version + 1,
      hash: policyHash(policies, null),
      policies,
      schema: null,
      status: 'active',
      author: 'test',
      message: 'let one workload watch secrets',
      createdAt: s.clock.now().toISOString(),
    });
    s.runtime.authorizer.invalidate('default');
    const csr = await makeCsr();
    const signed = (await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { csr: csr.pem, spiffe_id: id } })).json() as {
      certificate: string;
      issuing_ca: string;
      serial_number: string;
    };
    // Another certificate of the same workload: revoking it leaves this stream alone.
    const otherCsr = await makeCsr();
    const other = (await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { csr: otherCsr.pem, spiffe_id: id } })).json() as {
      serial_number: string;
    };
    const c = new RampartClient({ addr: s.addr!, caPem: s.runtime.trustBundlePem, clientCert: { certPem: `${signed.certificate}${signed.issuing_ca}`, keyPem: csr.keyPem } });
    clients.push(c);
    const stream = await open(c);
    await change('before-cert-revoked');
    await expect.poll(() => paths(stream.seen)).toEqual(['before-cert-revoked']);

    const revoke = (serial: string) => s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { serial_number: serial } });
    expect((await revoke(other.serial_number)).statusCode).toBe(200);
    await s.runtime.pkiSync.deliver();
    await change('other-cert-revoked');
    await expect.poll(() => paths(stream.seen)).toEqual(['before-cert-revoked', 'other-cert-revoked']);

    expect((await revoke(signed.serial_number)).statusCode).toBe(200);
    await s.runtime.pkiSync.deliver();
    // The next change is not sent: the revocation ended the stream, not a later heartbeat.
    await change('after-cert-revoked');
    await stream.ended();
    expect(paths(stream.seen)).toEqual(['before-cert-revoked', 'other-cert-revoked']);
  });
});
