import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerKeyId } from '../../src/pki/issuer.js';
import { runTool } from '../support/processes.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Delta CRLs (RFC 5280 §5.2.4, §5.2.6) as openssl sees them: `openssl crl -text` reads the Delta
 * CRL Indicator and the Freshest CRL pointer, and `openssl verify -crl_check -use_deltas` combines
 * an older complete CRL with the delta to refuse a certificate revoked after that base.
 */

const run = runTool;

describe('delta CRLs with openssl', () => {
  let server: TestServer;
  let dir: string;
  const f = (name: string) => join(dir, name);
  const admin = () => ({ authorization: `Bearer ${server.adminToken}` });

  /** Signs an SVID for `name` and writes `<name>.pem`; returns its serial. */
  async function issue(name: string): Promise<string> {
    const req = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', '/CN=x']);
    expect(req.status, req.stderr).toBe(0);
    const r = await server.app.inject({
      method: 'POST',
      url: '/v1/pki/sign',
      headers: admin(),
      payload: { csr: readFileSync(f(`${name}.csr`), 'utf8'), spiffe_id: `spiffe://default.rampart.local/delta/${name}`, ttl: '10m' },
    });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as { certificate: string; issuing_ca: string; serial_number: string };
    writeFileSync(f(`${name}.pem`), body.certificate);
    writeFileSync(f('intermediate.pem'), body.issuing_ca);
    return body.serial_number;
  }
  async function download(path: string, name: string): Promise<string> {
    const r = await run('curl', ['-sS', '--fail', '--cacert', server.runtime.files.trustBundle, '-o', f(name), `${server.addr}${path}`]);
    expect(r.status, r.stderr).toBe(0);
    return f(name);
  }
  const verify = (leaf: string, ...crls: string[]) =>
    run('openssl', ['verify', '-x509_strict', '-crl_check', '-use_deltas', '-CAfile', f('ca.pem'), '-untrusted', f('intermediate.pem'), ...crls.flatMap((c) => ['-CRLfile', c]), f(`${leaf}.pem`)]);

  beforeAll(async () => {
    server = await startTestServer({ listen: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-pki-delta-'));
    writeFileSync(f('ca.pem'), server.runtime.trustBundlePem);
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a base fetched before a revocation plus the delta fetched after it refuses the revoked leaf; openssl reads both', async () => {
    const keep = await issue('keep');
    const gone = await issue('gone');
    const base = await download('/v1/pki/crl?format=pem', 'base.crl.pem');
    const baseText = await run('openssl', ['crl', '-in', base, '-noout', '-text']);
    const deltaUrl = `${server.runtime.config.advertiseAddr}/v1/pki/issuers/${issuerKeyId(server.runtime.ca.intermediate)}/crl/delta`;
    expect(baseText.stdout).toMatch(new RegExp(`X509v3 Freshest CRL:\\s+Full Name:\\s+URI:${deltaUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(baseText.stdout).not.toContain('Delta CRL Indicator');
    const baseNumber = Number(/X509v3 CRL Number:\s+(\d+)/.exec(baseText.stdout)![1]);

    const revoked = await server.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: admin(), payload: { serial_number: gone, reason: 'keyCompromise' } });
    expect(revoked.statusCode, revoked.body).toBe(200);

    // The issuer's own path (the one Freshest CRL names) and the short one serve the same delta.
    const delta = await download(new URL(deltaUrl).pathname + '?format=pem', 'delta.crl.pem');
    expect(readFileSync(await download('/v1/pki/crl/delta?format=pem', 'delta2.crl.pem'), 'utf8')).toBe(readFileSync(delta, 'utf8'));
    const deltaText = await run('openssl', ['crl', '-in', delta, '-noout', '-text']);
    expect(deltaText.status, deltaText.stderr).toBe(0);
    expect(deltaText.stdout).toMatch(new RegExp(`X509v3 Delta CRL Indicator: critical\\s+${baseNumber}\\b`));
    expect(Number(/X509v3 CRL Number:\s+(\d+)/.exec(deltaText.stdout)![1])).toBeGreaterThan(baseNumber);
    expect(deltaText.stdout.toUpperCase()).toContain(gone.toUpperCase());
    expect(deltaText.stdout.toUpperCase()).not.toContain(keep.toUpperCase());
    expect(deltaText.stdout).toContain('Key Compromise');

    // The base alone predates the revocation; with the delta openssl refuses the revoked leaf.
    expect((await verify('gone', base)).status).toBe(0);
    const refused = await verify('gone', base, delta);
    expect(refused.status).not.toBe(0);
    expect(`${refused.stdout}${refused.stderr}`).toContain('certificate revoked');
    const kept = await verify('keep', base, delta);
    expect(kept.stdout.trim(), kept.stderr).toBe(`${f('keep.pem')}: OK`);
    // The DER form is the same CRL.
    const der = await download('/v1/pki/crl/delta', 'delta.crl');
    const derText = await run('openssl', ['crl', '-inform', 'DER', '-in', der, '-noout', '-text']);
    expect(derText.stdout).toContain('Delta CRL Indicator');
  });

  it('answers 404 pki.issuer_not_found for a delta of an issuer that does not answer here', async () => {
    const r = await server.app.inject({ method: 'GET', url: '/v1/pki/issuers/00ff/crl/delta' });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: 'pki.issuer_not_found' });
    expect((await server.app.inject({ method: 'GET', url: '/v1/pki/crl/delta?format=xml' })).statusCode).toBe(400);
  });
});
