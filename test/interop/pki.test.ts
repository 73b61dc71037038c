import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerKeyId } from '../../src/pki/issuer.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { runTool } from '../support/processes.js';

/**
 * Issuance and revocation as tools we did not write see them: `openssl req` makes the key and
 * CSR (the key never leaves this directory), `openssl verify` checks the SVID chain and, with
 * the CRL we serve, its revocation, and `openssl ocsp` asks our responder.
 */

const run = runTool;

describe('PKI with openssl and curl', () => {
  let server: TestServer;
  let dir: string;
  const f = (name: string) => join(dir, name);
  const id = 'spiffe://default.rampart.local/ns/pay/sa/api';

  beforeAll(async () => {
    server = await startTestServer({ listen: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-pki-interop-'));
    // The SPIFFE ID travels in the CSR, and the body is the issue's {"csr", "ttl"}.
    const req = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('key.pem'), '-out', f('csr.pem'), '-subj', '/CN=ignored by the CA', '-addext', `subjectAltName=URI:${id}`, '-addext', 'basicConstraints=critical,CA:FALSE']);
    expect(req.status, req.stderr).toBe(0);
    const r = await server.app.inject({
      method: 'POST',
      url: '/v1/pki/sign',
      headers: { authorization: `Bearer ${server.adminToken}` },
      payload: { csr: readFileSync(f('csr.pem'), 'utf8'), ttl: '10m' },
    });
    expect(r.statusCode).toBe(200);
    const body = r.json() as { certificate: string; issuing_ca: string; serial_number: string };
    writeFileSync(f('leaf.pem'), body.certificate);
    writeFileSync(f('intermediate.pem'), body.issuing_ca);
    writeFileSync(f('serial'), body.serial_number);
    const bundle = await run('curl', ['-sS', '--fail', '--cacert', server.runtime.files.trustBundle, '-o', f('bundle.pem'), `${server.addr}/v1/pki/ca/pem`]);
    expect(bundle.status, bundle.stderr).toBe(0);
    // The roots alone are the trust anchors; the intermediate travels as an untrusted chain cert.
    writeFileSync(f('ca.pem'), server.runtime.trustBundlePem);
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const verify = (...extra: string[]) =>
    run('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', f('ca.pem'), '-untrusted', f('intermediate.pem'), ...extra, f('leaf.pem')]);
  async function downloadCrl(name: string): Promise<string> {
    const r = await run('curl', ['-sS', '--fail', '--cacert', server.runtime.files.trustBundle, '-o', f(name), `${server.addr}/v1/pki/crl?format=pem`]);
    expect(r.status, r.stderr).toBe(0);
    return f(name);
  }
  const ocsp = () =>
    run('openssl', ['ocsp', '-issuer', f('intermediate.pem'), '-cert', f('leaf.pem'), '-url', `${server.addr}/v1/pki/ocsp`, '-CAfile', f('ca.pem'), '-timeout', '10']);

  it('issues an SVID that openssl verify accepts as a strict TLS client and server certificate', async () => {
    const client = await verify();
    expect(client.stdout.trim(), client.stderr).toBe(`${f('leaf.pem')}: OK`);
    const serverUse = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', f('ca.pem'), '-untrusted', f('intermediate.pem'), f('leaf.pem')]);
    expect(serverUse.stdout.trim()).toBe(`${f('leaf.pem')}: OK`);
    // Trusting the downloaded bundle works as well.
    const viaBundle = await run('openssl', ['verify', '-x509_strict', '-CAfile', f('bundle.pem'), f('leaf.pem')]);
    expect(viaBundle.stdout.trim()).toBe(`${f('leaf.pem')}: OK`);
    const text = await run('openssl', ['x509', '-in', f('leaf.pem'), '-noout', '-text']);
    expect(text.stdout).toContain(`URI:${id}`);
    expect(text.stdout).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text.stdout).not.toContain('ignored by the CA');
    expect(text.stdout).toContain(`URI:${server.runtime.config.advertiseAddr}/v1/pki/issuers/${issuerKeyId(server.runtime.ca.intermediate)}/crl`);
    expect(text.stdout).toContain(`OCSP - URI:${server.runtime.config.advertiseAddr}/v1/pki/ocsp`);
  });

  it('passes -crl_check and OCSP says good before revocation; both fail it after', async () => {
    const crlBefore = await downloadCrl('before.crl.pem');
    const text = await run('openssl', ['crl', '-in', crlBefore, '-noout', '-text']);
    expect(text.stdout).toMatch(/X509v3 CRL Number:\s+1\b/);
    expect(text.stdout).toContain('No Revoked Certificates');
    const okBefore = await verify('-crl_check', '-CRLfile', crlBefore);
    expect(okBefore.stdout.trim(), okBefore.stderr).toBe(`${f('leaf.pem')}: OK`);
    const good = await ocsp();
    expect(good.stdout, good.stderr).toContain(`${f('leaf.pem')}: good`);
    expect(good.stderr).toContain('Response verify OK');
    expect(good.stderr).not.toMatch(/nonce/i);

    const revoked = await server.app.inject({
      method: 'POST',
      url: '/v1/pki/revoke',
      headers: { authorization: `Bearer ${server.adminToken}` },
      payload: { serial_number: readFileSync(f('serial'), 'utf8'), reason: 'keyCompromise' },
    });
    expect(revoked.statusCode).toBe(200);

    const crlAfter = await downloadCrl('after.crl.pem');
    const after = await run('openssl', ['crl', '-in', crlAfter, '-noout', '-text']);
    expect(after.stdout).toMatch(/X509v3 CRL Number:\s+2\b/);
    expect(after.stdout).toContain('Key Compromise');
    const refused = await verify('-crl_check', '-CRLfile', crlAfter);
    expect(refused.status).not.toBe(0);
    expect(`${refused.stdout}${refused.stderr}`).toContain('certificate revoked');
    // The old CRL still passes: openssl only knows what it is given, which is why CRLs expire.
    expect((await verify('-crl_check', '-CRLfile', crlBefore)).status).toBe(0);

    const bad = await ocsp();
    expect(bad.stdout, bad.stderr).toContain(`${f('leaf.pem')}: revoked`);
    expect(bad.stdout).toContain('Reason: keyCompromise');
    expect(bad.stderr).toContain('Response verify OK');
  });

  it('answers the GET form of OCSP (base64 request in the path) with a response openssl verifies', async () => {
    const req = await run('openssl', ['ocsp', '-issuer', f('intermediate.pem'), '-cert', f('leaf.pem'), '-no_nonce', '-reqout', f('req.der')]);
    expect(req.status, req.stderr).toBe(0);
    const b64 = readFileSync(f('req.der')).toString('base64');
    const got = await run('curl', ['-sS', '--fail', '--cacert', server.runtime.files.trustBundle, '-o', f('resp.der'), `${server.addr}/v1/pki/ocsp/${encodeURIComponent(b64)}`]);
    expect(got.status, got.stderr).toBe(0);
    const r = await run('openssl', ['ocsp', '-respin', f('resp.der'), '-issuer', f('intermediate.pem'), '-cert', f('leaf.pem'), '-CAfile', f('ca.pem')]);
    expect(r.stderr).toContain('Response verify OK');
    expect(r.stdout).toContain(`${f('leaf.pem')}: revoked`);
  });
});

describe('CSRs made by openssl req that ask for what an SVID may not have', () => {
  let server: TestServer;
  let dir: string;
  const f = (name: string) => join(dir, name);
  const id = 'spiffe://default.rampart.local/ns/pay/sa/api';

  beforeAll(async () => {
    server = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'rampart-pki-bad-csr-'));
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const issuedCount = async () => Number((await server.runtime.database.db.selectFrom('pki_certificates').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  it.each<[string, string[], Record<string, string>, number, string]>([
    ['basicConstraints=critical,CA:TRUE', ['-addext', 'basicConstraints=critical,CA:TRUE'], { spiffe_id: id }, 400, 'pki.csr_requests_ca'],
    ['basicConstraints=CA:TRUE,pathlen:0 with keyCertSign', ['-addext', 'basicConstraints=CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { spiffe_id: id }, 400, 'pki.csr_requests_ca'],
    ['keyUsage=keyCertSign alone', ['-addext', 'keyUsage=digitalSignature,keyCertSign'], { spiffe_id: id }, 400, 'pki.csr_requests_ca'],
    ['two URI SANs', ['-addext', `subjectAltName=URI:${id},URI:${id}/admin`], {}, 400, 'pki.csr_multiple_uris'],
    ['a URI SAN that contradicts spiffe_id', ['-addext', `subjectAltName=URI:${id}/admin`], { spiffe_id: id }, 400, 'pki.csr_spiffe_id_mismatch'],
    ['a URI SAN in another trust domain', ['-addext', 'subjectAltName=URI:spiffe://evil.example/ns/pay/sa/api'], {}, 403, 'pki.spiffe_id_forbidden'],
    ['a URI SAN that is not a SPIFFE ID', ['-addext', 'subjectAltName=URI:https://bank.example/'], {}, 400, 'pki.spiffe_id_invalid'],
    ['a DNS SAN', ['-addext', 'subjectAltName=DNS:bank.example'], { spiffe_id: id }, 400, 'pki.csr_san_not_allowed'],
    ['an IP SAN', ['-addext', `subjectAltName=URI:${id},IP:10.0.0.1`], {}, 400, 'pki.csr_san_not_allowed'],
  ])('%s: refused with its code, audited, nothing issued', async (name, addext, body, status, code) => {
    const file = name.replace(/[^a-z0-9]+/gi, '-');
    const req = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${file}.key`), '-out', f(`${file}.csr`), '-subj', '/CN=x', ...addext]);
    expect(req.status, req.stderr).toBe(0);
    const before = await issuedCount();
    const r = await server.app.inject({
      method: 'POST',
      url: '/v1/pki/sign',
      headers: { authorization: `Bearer ${server.adminToken}` },
      payload: { csr: readFileSync(f(`${file}.csr`), 'utf8'), ttl: '10m', ...body },
    });
    expect({ status: r.statusCode, code: (r.json() as { code: string }).code }).toEqual({ status, code });
    expect(await issuedCount()).toBe(before);
    const requestId = String(r.headers['x-request-id']);
    const events = await server.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(20).execute();
    const event = events.map((e) => JSON.parse(e.payload) as { request_id: string; outcome: string; error_code: string }).find((e) => e.request_id === requestId);
    expect(event).toMatchObject({ outcome: status === 403 ? 'denied' : 'invalid', error_code: code });
  });
});

describe('key types through POST /v1/pki/sign, checked by openssl', () => {
  let server: TestServer;
  let dir: string;
  const f = (name: string) => join(dir, name);

  beforeAll(async () => {
    server = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'rampart-pki-keys-'));
    writeFileSync(f('ca.pem'), server.runtime.trustBundlePem);
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const signCsr = async (name: string, newKey: string[]) => {
    const req = await run('openssl', ['req', '-new', ...newKey, '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', '/CN=x']);
    expect(req.status, req.stderr).toBe(0);
    return server.app.inject({
      method: 'POST',
      url: '/v1/pki/sign',
      headers: { authorization: `Bearer ${server.adminToken}` },
      payload: { csr: readFileSync(f(`${name}.csr`), 'utf8'), spiffe_id: `spiffe://default.rampart.local/keys/${name}`, ttl: '10m' },
    });
  };

  it.each([
    ['p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'id-ecPublicKey'],
    ['ed25519', ['-newkey', 'ed25519'], 'ED25519'],
    ['rsa2048', ['-newkey', 'rsa:2048'], 'rsaEncryption'],
    ['rsa3072', ['-newkey', 'rsa:3072'], 'rsaEncryption'],
  ])('%s: a valid SVID over the CSR key that openssl verify -x509_strict -purpose sslclient accepts', { timeout: 30_000 }, async (name, newKey, keyAlgorithm) => {
    const r = await signCsr(name, newKey);
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as { certificate: string; issuing_ca: string };
    writeFileSync(f(`${name}.pem`), body.certificate);
    writeFileSync(f(`${name}-int.pem`), body.issuing_ca);
    const verified = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', f('ca.pem'), '-untrusted', f(`${name}-int.pem`), f(`${name}.pem`)]);
    expect(verified.stdout.trim(), verified.stderr).toBe(`${f(`${name}.pem`)}: OK`);
    const text = await run('openssl', ['x509', '-in', f(`${name}.pem`), '-noout', '-text']);
    expect(text.stdout).toContain(`Public Key Algorithm: ${keyAlgorithm}`);
    // The certificate holds the CSR's key: the workload's own private key matches it.
    const pub = await run('openssl', ['pkey', '-in', f(`${name}.key`), '-pubout']);
    const certPub = await run('openssl', ['x509', '-in', f(`${name}.pem`), '-noout', '-pubkey']);
    expect(certPub.stdout).toBe(pub.stdout);
  });

  it.each([
    ['rsa1024', ['-newkey', 'rsa:1024']],
    ['p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['ed448', ['-newkey', 'ed448']],
    ['rsa4096', ['-newkey', 'rsa:4096']],
  ])('%s: refused with pki.key_unsupported, nothing issued', { timeout: 30_000 }, async (name, newKey) => {
    const before = await server.runtime.database.db.selectFrom('pki_certificates').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    const r = await signCsr(name, newKey);
    expect(r.statusCode).toBe(400);
    expect((r.json() as { code: string }).code).toBe('pki.key_unsupported');
    const after = await server.runtime.database.db.selectFrom('pki_certificates').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
  });
});
