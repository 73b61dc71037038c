import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RAMPART_POLICY_STORE } from '../../src/authz/entities.js';
import { policyHash } from '../../src/authz/seed-policies.js';
import { createRootCa, issueSvid } from '../../src/pki/ca.js';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { runTool } from '../support/processes.js';

const run = promisify(execFile);

const client = runTool;

/**
 * The server's TLS and mTLS as clients we did not write see them: OpenSSL's s_client and verify,
 * and curl with a client certificate.
 */
describe('TLS and mTLS with openssl and curl', () => {
  let server: TestServer;
  let dir: string;
  let port: string;

  beforeAll(async () => {
    server = await startTestServer({ listen: true });
    port = new URL(server.addr!).port;
    dir = mkdtempSync(join(tmpdir(), 'rampart-interop-'));
    writeFileSync(join(dir, 'server-chain.pem'), server.runtime.tls.certPem);
  });
  afterAll(async () => {
    await server.close();
  });

  async function svid(spiffeId: string, name: string): Promise<{ cert: string; key: string }> {
    const keys = await generateKeyPair('ecdsa-p256');
    const leaf = await issueSvid(server.runtime.ca.intermediate, {
      publicKey: keys.publicKey,
      spiffeId: parseSpiffeId(spiffeId).id,
      clock: server.clock,
      ttlMs: 3_600_000,
    });
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}-key.pem`);
    writeFileSync(cert, `${leaf.toString('pem')}\n${server.runtime.ca.intermediate.certificate.toString('pem')}\n`);
    writeFileSync(key, await exportPrivateKeyPkcs8Pem(keys.privateKey), { mode: 0o600 });
    return { cert, key };
  }

  async function curl(args: string[]): Promise<{ status: number; body: string }> {
    const { stdout } = await run('curl', ['-sS', '--cacert', server.runtime.files.trustBundle, '-w', '\n%{http_code}', ...args]);
    const i = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
  }

  it('serves a chain that openssl verify accepts for TLS server use', async () => {
    const pems = server.runtime.tls.certPem.split(/(?<=-----END CERTIFICATE-----)\n?/).filter((p) => p.trim());
    writeFileSync(join(dir, 'leaf.pem'), pems[0]!);
    writeFileSync(join(dir, 'intermediate.pem'), pems[1]!);
    const { stdout } = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', server.runtime.files.trustBundle, '-untrusted', join(dir, 'intermediate.pem'), join(dir, 'leaf.pem')]);
    expect(stdout.trim()).toBe(`${join(dir, 'leaf.pem')}: OK`);
  });

  it('negotiates TLS 1.3 with a verified chain for 127.0.0.1 and localhost', async () => {
    for (const check of [['-verify_ip', '127.0.0.1'], ['-servername', 'localhost', '-verify_hostname', 'localhost']]) {
      const r = await client('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...check, '-CAfile', server.runtime.files.trustBundle, '-verify_return_error', '-brief']);
      expect(r.stderr).toContain('Protocol version: TLSv1.3');
      expect(r.stderr).toContain('Verification: OK');
    }
  });

  it('refuses TLS 1.2', async () => {
    const r = await client('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-CAfile', server.runtime.files.trustBundle, '-brief']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).not.toContain('Protocol version: TLSv1.2');
  });

  it('answers curl with the trust bundle, and curl without it fails verification', async () => {
    const ok = await curl([`${server.addr}/v1/health`]);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ status: 'ok', store: 'sqlite' });
    const r = await client('curl', ['-sS', `${server.addr}/v1/health`]);
    expect(r.status).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
  });

  it('maps an SVID to a workload principal that is denied by default', async () => {
    const { cert, key } = await svid('spiffe://default.rampart.local/ns/pay/sa/api', 'workload');
    const r = await curl(['--cert', cert, '--key', key, `${server.addr}/v1/audit/events`]);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).code).toBe('authz.denied');
    const events = await server.runtime.stores.audit.listEvents('default', 0, 1000);
    const last = JSON.parse(events.items.at(-1)!.payload);
    expect(last.principal).toEqual({ type: 'Rampart::Workload', id: 'spiffe://default.rampart.local/ns/pay/sa/api', tenant: 'default', auth_method: 'mtls' });
    expect(last.outcome).toBe('denied');
  });

  it('lets a workload do what a policy grants its SPIFFE ID', async () => {
    const id = 'spiffe://default.rampart.local/ns/audit/sa/reader';
    const policies = {
      'rampart.cedar': `${(await server.runtime.stores.policies.active('default', RAMPART_POLICY_STORE))!.policies['rampart.cedar']}\n@id("audit-reader")\npermit (principal == Rampart::Workload::"${id}", action == Rampart::Action::"audit:read", resource);\n`,
    };
    await server.runtime.stores.policies.insert({
      tenant: 'default',
      store: RAMPART_POLICY_STORE,
      version: 2,
      hash: policyHash(policies, null),
      policies,
      schema: null,
      status: 'active',
      author: 'test',
      message: 'grant audit:read to one workload',
      createdAt: server.clock.now().toISOString(),
    });
    server.runtime.authorizer.invalidate('default');
    const { cert, key } = await svid(id, 'reader');
    const r = await curl(['--cert', cert, '--key', key, `${server.addr}/v1/audit/events?limit=1`]);
    expect(r.status).toBe(200);
    const page = JSON.parse(r.body);
    expect(page.items).toHaveLength(1);
    expect(page.items[0].event.action).toBe('system:bootstrap');
    expect(page.next_cursor).toEqual(expect.any(String));
    const denied = await curl(['--cert', cert, '--key', key, `${server.addr}/v1/tenants`]);
    expect(denied.status).toBe(403);
  });

  it('refuses a client certificate from another CA, even with a valid token', async () => {
    const foreign = await createRootCa({ commonName: 'Rampart Root CA', clock: server.clock });
    const keys = await generateKeyPair('ecdsa-p256');
    const leaf = await issueSvid(foreign, { publicKey: keys.publicKey, spiffeId: parseSpiffeId('spiffe://default.rampart.local/ns/evil').id, clock: server.clock, ttlMs: 3_600_000 });
    writeFileSync(join(dir, 'forged.pem'), leaf.toString('pem'));
    writeFileSync(join(dir, 'forged-key.pem'), await exportPrivateKeyPkcs8Pem(keys.privateKey));
    for (const extra of [[], ['-H', `Authorization: Bearer ${server.adminToken}`]]) {
      const r = await curl(['--cert', join(dir, 'forged.pem'), '--key', join(dir, 'forged-key.pem'), ...extra, `${server.addr}/v1/tokens/self`]);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body).code).toBe('auth.client_cert_untrusted');
    }
  });

  it('refuses a certificate of ours that is not an SVID, and an SVID of an unknown trust domain', async () => {
    writeFileSync(join(dir, 'server-key.pem'), server.runtime.tls.keyPem);
    const asClient = await curl(['--cert', join(dir, 'server-chain.pem'), '--key', join(dir, 'server-key.pem'), `${server.addr}/v1/tokens/self`]);
    expect(asClient.status).toBe(401);
    expect(JSON.parse(asClient.body).code).toBe('auth.client_cert_invalid');
    const { cert, key } = await svid('spiffe://elsewhere.example/ns/x', 'stranger');
    const stranger = await curl(['--cert', cert, '--key', key, `${server.addr}/v1/tokens/self`]);
    expect(stranger.status).toBe(401);
    expect(JSON.parse(stranger.body).code).toBe('auth.client_cert_invalid');
  });
});

describe('revoked client certificates', () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    server = await startTestServer({ listen: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-revoked-'));
  });
  afterAll(async () => {
    await server.close();
  });

  it('refuses an SVID once it is revoked, even with a valid token, and audits it', async () => {
    const keys = await generateKeyPair('ecdsa-p256');
    writeFileSync(join(dir, 'csr-key.pem'), await exportPrivateKeyPkcs8Pem(keys.privateKey), { mode: 0o600 });
    await run('openssl', ['req', '-new', '-key', join(dir, 'csr-key.pem'), '-subj', '/CN=w', '-out', join(dir, 'w.csr')]);
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const signed = await server.app.inject({
      method: 'POST',
      url: '/v1/pki/sign',
      headers: admin,
      payload: { csr: readFileSync(join(dir, 'w.csr'), 'utf8'), spiffe_id: 'spiffe://default.rampart.local/ns/w' },
    });
    expect(signed.statusCode, signed.body).toBe(200);
    const svid = signed.json() as { certificate: string; issuing_ca: string; serial_number: string };
    writeFileSync(join(dir, 'w.pem'), `${svid.certificate}\n${svid.issuing_ca}\n`);
    const curlAs = async (extra: string[]) => {
      const { stdout } = await run('curl', ['-sS', '--cacert', server.runtime.files.trustBundle, '--cert', join(dir, 'w.pem'), '--key', join(dir, 'csr-key.pem'), '-w', '\n%{http_code}', ...extra, `${server.addr}/v1/tokens/self`]);
      const i = stdout.lastIndexOf('\n');
      return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
    };
    expect((await curlAs([])).status).toBe(403); // authenticated as the workload, denied by default

    const revoked = await server.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: admin, payload: { serial_number: svid.serial_number, reason: 'keyCompromise' } });
    expect(revoked.statusCode, revoked.body).toBe(200);
    for (const extra of [[], ['-H', `Authorization: Bearer ${server.adminToken}`]]) {
      const r = await curlAs(extra);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body).code).toBe('auth.client_cert_revoked');
    }
    await server.runtime.audit.flush();
    const events = await server.runtime.stores.audit.listEvents('default', 0, 1000);
    expect(JSON.parse(events.items.at(-1)!.payload)).toMatchObject({ outcome: 'unauthenticated', error_code: 'auth.client_cert_revoked' });
  });
});
