import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { LightMyRequestResponse } from 'fastify';
import { importJWK } from 'jose';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { ensureCaHierarchy } from '../../src/pki/hierarchy.js';
import { issuerKeyId } from '../../src/pki/issuer.js';
import { TEST_DATABASES } from '../support/databases.js';
import { makeCsr } from '../support/pki.js';
import { runTool } from '../support/processes.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * CA rotation through the API: a new intermediate is in the bundle before it signs, the old one
 * keeps validating (bundle, CRL, OCSP) until its last leaf expires; root rotation through a
 * cross-certificate that lets peers trusting only the old root validate new leaves; the root key
 * taken offline and back. openssl, not our code, does the path validation.
 */

/** The hex subject key identifier: the key id the API reports and CRL URLs carry. */
const keyIdOf = (cert: x509.X509Certificate): string => cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId.toLowerCase();
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = <T = Record<string, unknown>>(r: LightMyRequestResponse) => r.json() as T;
const ID = 'spiffe://default.rampart.local/ns/pay/sa/api';
const MINUTE = 60_000;

interface CaAnswer {
  bundle_sequence: number;
  authorities: { id: string; role: string; status: string; key_id: string; key_online: boolean; activate_after: string | null }[];
}
interface Signed {
  certificate: string;
  issuing_ca: string;
  ca_chain: string[];
  serial_number: string;
}

describe.each(TEST_DATABASES)('CA rotation ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  let dir: string;
  const f = (name: string) => join(dir, name);

  beforeAll(async () => {
    s = await startTestServer({ database, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
    admin = bearer(s.adminToken);
    dir = mkdtempSync(join(tmpdir(), 'rampart-rotation-'));
  });
  afterAll(async () => {
    await s?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const sign = async (ttl = '10m'): Promise<Signed> => {
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: admin, payload: { csr: (await makeCsr()).pem, spiffe_id: ID, ttl } });
    expect(r.statusCode, r.body).toBe(200);
    return json<Signed>(r);
  };
  const status = async () => json<CaAnswer>(await s.app.inject({ method: 'GET', url: '/v1/pki/ca/status', headers: admin }));
  const bundlePem = async () => (await s.app.inject({ method: 'GET', url: '/v1/pki/ca/pem' })).body;
  const jwks = async () => json<{ keys: { x5c: string[]; use: string }[]; spiffe_sequence: number; spiffe_refresh_hint: number }>(await s.app.inject({ method: 'GET', url: '/v1/pki/bundle.jwks' }));
  const pemCerts = (pem: string) => x509.PemConverter.decodeWithHeaders(pem).map((b) => new x509.X509Certificate(b.rawData));
  const issuerOf = (signed: Signed) => new x509.X509Certificate(signed.issuing_ca);
  /** openssl verify with `anchors` as the only trust anchors and the response's chain as untrusted certificates. */
  const verify = async (signed: Signed, anchors: string, name: string): Promise<string> => {
    writeFileSync(f(`${name}-leaf.pem`), signed.certificate);
    writeFileSync(f(`${name}-chain.pem`), signed.ca_chain.map((c) => `${c.trim()}\n`).join(''));
    writeFileSync(f(`${name}-anchors.pem`), anchors);
    // At the test clock's time: the tests move it past the real one.
    const at = String(Math.floor(s.clock.now().getTime() / 1000));
    const r = await runTool('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-attime', at, '-CAfile', f(`${name}-anchors.pem`), '-untrusted', f(`${name}-chain.pem`), f(`${name}-leaf.pem`)]);
    return r.stdout + r.stderr;
  };

  it('publishes the SPIFFE bundle: one x509-svid key per trusted CA, x5c equal to the PEM bundle, importable by jose', async () => {
    const bundle = await jwks();
    expect(bundle.spiffe_sequence).toBeGreaterThanOrEqual(1);
    expect(bundle.spiffe_refresh_hint).toBe(300);
    const fromPem = pemCerts(await bundlePem()).map((c) => Buffer.from(c.rawData).toString('base64'));
    expect(bundle.keys.map((k) => k.x5c)).toEqual(fromPem.map((c) => [c]));
    for (const key of bundle.keys) {
      expect(key.use).toBe('x509-svid');
      const { x5c: _x5c, use: _use, ...jwk } = key;
      await expect(importJWK({ ...jwk, alg: 'ES256' })).resolves.toBeDefined();
    }
  });

  it('prepares an intermediate that is in the bundle before it signs anything, then activates it on the explicit call', async () => {
    const before = await sign();
    const sequenceBefore = (await jwks()).spiffe_sequence;
    const events: string[] = [];
    const unsubscribe = s.runtime.pkiEvents.subscribe('default', (e) => events.push(e.type));
    const prepared = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: { propagation_delay: '10m' } });
    expect(prepared.statusCode, prepared.body).toBe(200);
    unsubscribe();
    expect(events).toContain('bundle'); // agents rewrite bundle.pem
    const next = json<CaAnswer>(prepared).authorities.find((a) => a.status === 'prepared')!;
    expect(next.role).toBe('intermediate');

    // Published: in both bundle forms, with a new sequence number...
    expect((await jwks()).spiffe_sequence).toBe(sequenceBefore + 1);
    const keyIds = pemCerts(await bundlePem()).map((c) => keyIdOf(c));
    expect(keyIds).toContain(next.key_id);
    // ...but not signing: new leaves still come from the old intermediate.
    expect(keyIdOf(issuerOf(await sign()))).toBe(keyIdOf(issuerOf(before)));
    // A second rotation while one is prepared is refused.
    const again = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: {} });
    expect(again.statusCode).toBe(409);
    expect(json(again).code).toBe('pki.rotation_in_progress');

    const activated = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/activate', headers: admin });
    expect(activated.statusCode, activated.body).toBe(200);
    const after = await sign();
    expect(keyIdOf(issuerOf(after))).toBe(next.key_id);

    // The old intermediate keeps validating: still in the bundle, its leaf verifies with openssl,
    // its CRL answers at its own distribution point and OCSP answers for its serial.
    const roots = s.runtime.ca.roots.map((r) => `${r.toString('pem')}\n`).join('');
    expect(await verify(before, roots, 'old')).toContain(': OK');
    expect(await verify(after, roots, 'new')).toContain(': OK');
    const oldId = keyIdOf(issuerOf(before));
    expect(pemCerts(await bundlePem()).map((c) => keyIdOf(c))).toContain(oldId);
    const crl = await s.app.inject({ method: 'GET', url: `/v1/pki/issuers/${oldId}/crl` });
    expect(crl.statusCode).toBe(200);
    expect(new x509.X509Crl(crl.rawPayload).issuer).toBe(issuerOf(before).subject);
    const ocspRequest = new pkijs.OCSPRequest();
    await ocspRequest.createForCertificate(pkijs.Certificate.fromBER(new x509.X509Certificate(before.certificate).rawData), {
      hashAlgorithm: 'SHA-256',
      issuerCertificate: pkijs.Certificate.fromBER(issuerOf(before).rawData),
    });
    const answer = await s.app.inject({ method: 'POST', url: '/v1/pki/ocsp', headers: { 'content-type': 'application/ocsp-request' }, payload: Buffer.from(ocspRequest.toSchema(true).toBER()) });
    const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(answer.rawPayload).responseBytes!.response.valueBlock.valueHexView);
    expect(basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber).toBe(0); // good
  });

  it('survives a restart: the hierarchy reloaded from the store has the new intermediate signing', async () => {
    const reloaded = await ensureCaHierarchy(s.runtime.stores.ca, s.runtime.barrier, s.clock);
    expect(issuerKeyId(reloaded.intermediate)).toBe(issuerKeyId(s.runtime.ca.intermediate));
    expect(reloaded.trusted.map((c) => c.subject)).toEqual(s.runtime.ca.trusted.map((c) => c.subject));
  });

  it('retires the previous intermediate once its last leaf has expired, and only then', async () => {
    const previous = (await status()).authorities.find((a) => a.status === 'previous')!;
    s.clock.advance(5 * MINUTE);
    expect((await status()).authorities.find((a) => a.id === previous.id)?.status).toBe('previous');
    s.clock.advance(6 * MINUTE + 2_000); // every 10m leaf of it has expired; the 1-minute check is due
    expect((await status()).authorities.find((a) => a.id === previous.id)).toBeUndefined();
    expect((await s.app.inject({ method: 'GET', url: `/v1/pki/issuers/${previous.key_id}/crl` })).statusCode).toBe(404);
  });

  it('activates a prepared intermediate by itself once the propagation delay has passed', async () => {
    const current = issuerKeyId(s.runtime.ca.intermediate);
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: { propagation_delay: '2m' } });
    const next = json<CaAnswer>(r).authorities.find((a) => a.status === 'prepared')!;
    s.clock.advance(MINUTE);
    expect(keyIdOf(issuerOf(await sign()))).toBe(current);
    s.clock.advance(MINUTE + 1_000);
    expect(keyIdOf(issuerOf(await sign()))).toBe(next.key_id);
  });

  it('rotates the root through a cross-certificate: new leaves verify against the old root alone and against the new root alone', async () => {
    const oldRoots = s.runtime.ca.roots.map((r) => `${r.toString('pem')}\n`).join('');
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: { target: 'root', propagation_delay: '0s' } });
    expect(r.statusCode, r.body).toBe(200);
    const roles = json<CaAnswer>(r).authorities.map((a) => `${a.role}:${a.status}`);
    expect(roles.filter((x) => x === 'root:active')).toHaveLength(2);
    expect(roles).toContain('cross:active');
    s.clock.advance(1_500);
    const leaf = await sign();
    expect(leaf.ca_chain).toHaveLength(3); // intermediate, cross-certificate, old root
    const newRoot = s.runtime.ca.roots[s.runtime.ca.roots.length - 1]!;
    expect(await verify(leaf, oldRoots, 'cross-old')).toContain(': OK');
    expect(await verify(leaf, `${newRoot.toString('pem')}\n`, 'cross-new')).toContain(': OK');
    // Both roots are in the bundle during the overlap.
    const subjects = pemCerts(await bundlePem()).map((c) => c.subject);
    for (const root of s.runtime.ca.roots) expect(subjects).toContain(root.subject);
  });

  it('exports the root key encrypted, removes it, refuses a rotation without it, and takes it back', async () => {
    const exported = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/root/export', headers: admin, payload: { passphrase: 'correct horse battery staple' } });
    expect(exported.statusCode, exported.body).toBe(200);
    const { root_id: rootId, encrypted_key: encrypted } = json<{ root_id: string; encrypted_key: string }>(exported);
    expect(encrypted).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    writeFileSync(f('root.p8.enc'), encrypted);
    const decrypted = await runTool('openssl', ['pkey', '-in', f('root.p8.enc'), '-passin', 'pass:correct horse battery staple', '-noout']);
    expect(decrypted.status, decrypted.stderr).toBe(0);
    expect((await runTool('openssl', ['pkey', '-in', f('root.p8.enc'), '-passin', 'pass:wrong', '-noout'])).status).not.toBe(0);

    const short = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/root/export', headers: admin, payload: { passphrase: 'short' } });
    expect(json(short).code).toBe('pki.root_key_invalid');

    expect((await s.app.inject({ method: 'POST', url: '/v1/pki/ca/root/remove', headers: admin, payload: { root_id: rootId } })).statusCode).toBe(200);
    expect((await status()).authorities.find((a) => a.id === rootId)?.key_online).toBe(false);
    const refused = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: {} });
    expect(refused.statusCode).toBe(409);
    expect(json(refused).code).toBe('pki.root_offline');
    // Issuance goes on: only the intermediate needs to be online.
    await sign();

    const wrong = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/root/import', headers: admin, payload: { encrypted_key: encrypted, passphrase: 'not the passphrase!!' } });
    expect(json(wrong).code).toBe('pki.root_key_invalid');
    expect(wrong.body).not.toContain('not the passphrase');
    const imported = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/root/import', headers: admin, payload: { encrypted_key: encrypted, passphrase: 'correct horse battery staple' } });
    expect(imported.statusCode, imported.body).toBe(200);
    expect((await status()).authorities.find((a) => a.id === rootId)?.key_online).toBe(true);
  });

  it('audits every CA operation without the passphrase or any key material', async () => {
    const rows = await s.runtime.database.db.selectFrom('audit_events').select(['payload', 'action']).where('action', 'like', 'pki:ca-%').execute();
    expect(new Set(rows.map((r) => r.action))).toEqual(new Set(['pki:ca-read', 'pki:ca-rotate', 'pki:ca-root']));
    for (const { payload } of rows) {
      expect(payload).not.toContain('correct horse');
      expect(payload).not.toContain('PRIVATE KEY');
    }
  });
});

describe.each(TEST_DATABASES)('rotation with a root outside the server ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  let dir: string;
  const f = (name: string) => join(dir, name);
  const PASSPHRASE = 'correct horse battery staple';

  beforeAll(async () => {
    s = await startTestServer({ database });
    admin = bearer(s.adminToken);
    dir = mkdtempSync(join(tmpdir(), 'rampart-rotation-ext-'));
    writeFileSync(f('ca.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    writeFileSync(f('leaf.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n');
  });
  afterAll(async () => {
    await s?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const csr = async (name: string) => {
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/intermediate/csr', headers: admin });
    expect(r.statusCode, r.body).toBe(200);
    writeFileSync(f(`${name}.csr`), json<{ csr: string }>(r).csr);
  };
  const opensslSign = async (name: string, ca: string, caKey: string, ext: string, ...extra: string[]) => {
    const r = await runTool('openssl', ['x509', '-req', '-in', f(`${name}.csr`), '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-days', '30', '-sha256', '-extfile', f(ext), '-out', f(`${name}.pem`), ...extra]);
    expect(r.status, r.stderr).toBe(0);
    return readFileSync(f(`${name}.pem`), 'utf8');
  };
  const setSigned = (payload: Record<string, string>) => s.app.inject({ method: 'POST', url: '/v1/pki/ca/intermediate/set-signed', headers: admin, payload });
  const signLeaf = async () => {
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: admin, payload: { csr: (await makeCsr()).pem, spiffe_id: ID, ttl: '10m' } });
    expect(r.statusCode, r.body).toBe(200);
    return json<Signed>(r);
  };
  const verifyWith = async (leaf: Signed, anchorFile: string) => {
    writeFileSync(f('v-leaf.pem'), leaf.certificate);
    writeFileSync(f('v-chain.pem'), leaf.ca_chain.map((c) => `${c.trim()}\n`).join(''));
    const r = await runTool('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', anchorFile, '-untrusted', f('v-chain.pem'), f('v-leaf.pem')]);
    return r.stdout + r.stderr;
  };

  it('our root offline: its exported key signs the CSR with openssl, and the intermediate goes live', async () => {
    const exported = json<{ root_id: string; encrypted_key: string; certificate: string }>(await s.app.inject({ method: 'POST', url: '/v1/pki/ca/root/export', headers: admin, payload: { passphrase: PASSPHRASE } }));
    writeFileSync(f('root.p8.enc'), exported.encrypted_key);
    writeFileSync(f('root.pem'), exported.certificate);
    expect((await s.app.inject({ method: 'POST', url: '/v1/pki/ca/root/remove', headers: admin, payload: { root_id: exported.root_id } })).statusCode).toBe(200);

    await csr('next');
    const again = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/intermediate/csr', headers: admin });
    expect(json(again).code).toBe('pki.rotation_in_progress');
    // Signed as a leaf, it is refused and nothing is installed.
    const asLeaf = await opensslSign('next', f('root.pem'), f('root.p8.enc'), 'leaf.cnf', '-passin', `pass:${PASSPHRASE}`);
    expect(json(await setSigned({ certificate: asLeaf })).code).toBe('pki.ca_certificate_invalid');
    const signed = await opensslSign('next', f('root.pem'), f('root.p8.enc'), 'ca.cnf', '-passin', `pass:${PASSPHRASE}`);
    const installed = await setSigned({ certificate: signed, propagation_delay: '0s' });
    expect(installed.statusCode, installed.body).toBe(200);
    expect(json<CaAnswer>(installed).authorities.filter((a) => a.status === 'prepared')).toHaveLength(1);
    // openssl set notBefore from the real clock, ahead of the test's: activation waits for it.
    s.clock.advance(Math.max(0, Date.now() - s.clock.now().getTime()) + 1_500);
    const leaf = await signLeaf();
    expect(leaf.issuing_ca.trim()).toBe(signed.trim());
    expect(await verifyWith(leaf, f('root.pem'))).toContain(': OK');
  });

  it('an external root: the signed intermediate and its root come back together, the root becomes trusted', async () => {
    const root = await runTool('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ext.key'), '-out', f('ext.pem'), '-subj', '/CN=External Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    expect(root.status, root.stderr).toBe(0);
    await csr('ext-int');
    const signed = await opensslSign('ext-int', f('ext.pem'), f('ext.key'), 'ca.cnf');
    // Without its root the server cannot place it.
    expect(json(await setSigned({ certificate: signed })).code).toBe('pki.ca_certificate_invalid');
    const installed = await setSigned({ certificate: signed, root: readFileSync(f('ext.pem'), 'utf8'), propagation_delay: '0s' });
    expect(installed.statusCode, installed.body).toBe(200);
    const roots = json<CaAnswer>(installed).authorities.filter((a) => a.role === 'root');
    expect(roots.some((r) => !r.key_online && r.status === 'active')).toBe(true);
    s.clock.advance(Math.max(0, Date.now() - s.clock.now().getTime()) + 1_500);
    const leaf = await signLeaf();
    expect(await verifyWith(leaf, f('ext.pem'))).toContain(': OK');
    const bundle = (await s.app.inject({ method: 'GET', url: '/v1/pki/ca/pem' })).body;
    expect(bundle).toContain(readFileSync(f('ext.pem'), 'utf8').trim().split('\n')[1]);
    // A rotation that needs this server to sign under the external root is refused.
    expect(json(await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: {} })).code).toBe('pki.root_offline');
  });
});
