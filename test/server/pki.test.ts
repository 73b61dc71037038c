import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { RampartApiError, RampartClient } from '../../src/sdk/index.js';
import { TEST_DATABASES } from '../support/databases.js';
import { canonicalSerial, issuerKeyId } from '../../src/pki/issuer.js';
import { makeCsr, svidShape } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * POST /v1/pki/sign and /v1/pki/revoke through the whole request path, and the public CRL, OCSP
 * and CA bundle routes. Every refusal is checked three ways: its code, nothing issued or
 * revoked, and an audit event carrying the code.
 */

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = (r: LightMyRequestResponse) => r.json() as Record<string, unknown>;
const ID = 'spiffe://default.rampart.local/ns/pay/sa/api';

describe.each(TEST_DATABASES)('PKI API ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  let acmeAdmin: Record<string, string>;
  /** A default-tenant token with no policies: authenticated, permitted nothing. */
  let nobody: Record<string, string>;

  beforeAll(async () => {
    // Certificates hold whole seconds; a whole-second clock keeps validity arithmetic exact.
    s = await startTestServer({ database, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
    admin = bearer(s.adminToken);
    expect((await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin, payload: { name: 'acme' } })).statusCode).toBe(201);
    const acme = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { ...admin, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } });
    acmeAdmin = bearer(json(acme).token as string);
    nobody = bearer(json(await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { policies: [] } })).token as string);
  });
  afterAll(async () => {
    await s?.close();
  });

  const sign = async (headers: Record<string, string>, payload: Record<string, unknown>) =>
    remember(await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers, payload }));
  const revoke = async (headers: Record<string, string>, payload: Record<string, unknown>) =>
    remember(await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers, payload }));
  const issuedCount = async () => Number((await s.runtime.database.db.selectFrom('pki_certificates').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  type Event = { request_id: string; action: string; outcome: string; error_code: string | null; resource: { type: string; id: string } | null; details?: Record<string, unknown> };
  /** The audit event of the last request answered (found by its request id, not by position). */
  let lastRequestId = '';
  const lastAudit = async (): Promise<Event> => {
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(50).execute();
    const event = rows.map((r) => JSON.parse(r.payload) as Event).find((e) => e.request_id === lastRequestId);
    if (!event) throw new Error(`no audit event for request ${lastRequestId}`);
    return event;
  };
  const remember = (r: LightMyRequestResponse) => {
    lastRequestId = String(r.headers['x-request-id']);
    return r;
  };
  /** Asserts a refusal: status and code, nothing issued, and an audit event with the code. */
  async function expectRefused(attempt: () => Promise<LightMyRequestResponse>, status: number, code: string) {
    const before = await issuedCount();
    const r = await attempt();
    expect({ status: r.statusCode, code: json(r).code }).toEqual({ status, code });
    expect(await issuedCount()).toBe(before);
    const event = await lastAudit();
    expect({ outcome: event.outcome, error_code: event.error_code }).toEqual({ outcome: status === 403 ? 'denied' : 'invalid', error_code: code });
    return event;
  }

  describe('sign', () => {
    it('issues an X.509-SVID for the requested ID over the CSR key, records and audits it', async () => {
      const csr = await makeCsr();
      const r = await sign(admin, { csr: csr.pem, ttl: '10m', spiffe_id: ID });
      expect(r.statusCode).toBe(200);
      const body = json(r) as { certificate: string; issuing_ca: string; ca_chain: string[]; serial_number: string; expiration: number; spiffe_id: string };
      const shape = svidShape(body.certificate);
      expect(shape.uris).toEqual([ID]);
      expect(shape.subject).toBe('');
      expect(shape.ca).toBe(false);
      expect(shape.crlUrls).toEqual([`${s.runtime.config.advertiseAddr}/v1/pki/issuers/${issuerKeyId(s.runtime.ca.intermediate)}/crl`]);
      expect(shape.ocspUrls).toEqual([`${s.runtime.config.advertiseAddr}/v1/pki/ocsp`]);
      // The certificate carries the CSR's key, so only the CSR's holder can use it.
      const spki = Buffer.from(await crypto.subtle.exportKey('spki', csr.keys.publicKey));
      expect(Buffer.from(shape.cert.publicKey.rawData).equals(spki)).toBe(true);
      const intermediate = s.runtime.ca.intermediate.certificate;
      expect(body.issuing_ca.trim()).toBe(intermediate.toString('pem'));
      expect(body.ca_chain.map((p) => p.trim())).toEqual([intermediate.toString('pem'), s.runtime.ca.roots[0]!.toString('pem')]);
      expect(await shape.cert.verify({ publicKey: intermediate.publicKey, date: s.clock.now() })).toBe(true);
      expect(body.serial_number).toBe(canonicalSerial(shape.cert.serialNumber));
      expect(body.expiration).toBe(Math.floor(shape.cert.notAfter.getTime() / 1000));
      expect(shape.cert.notAfter.getTime()).toBe(s.clock.now().getTime() + 600_000);

      const row = await s.runtime.stores.certificates.get('default', body.serial_number);
      expect(row).toMatchObject({ tenant: 'default', spiffeId: ID, notAfter: shape.cert.notAfter.toISOString(), revokedAt: null });
      const event = await lastAudit();
      expect(event).toMatchObject({ action: 'pki:sign', outcome: 'success', resource: { type: 'Rampart::SpiffeId', id: ID } });
      expect(event.details).toEqual({ serial_number: body.serial_number, spiffe_id: ID, not_after: shape.cert.notAfter.toISOString() });
    });

    it('defaults the TTL to 1h and refuses one over the maximum, or unparsable, issuing nothing', async () => {
      const csr = await makeCsr();
      const r = await sign(admin, { csr: csr.pem, spiffe_id: ID });
      expect(svidShape(json(r).certificate as string).cert.notAfter.getTime()).toBe(s.clock.now().getTime() + 3_600_000);
      expect(s.runtime.config.pkiMaxTtlMs).toBe(86_400_000);
      expect(json(await sign(admin, { csr: csr.pem, spiffe_id: ID, ttl: '24h' })).serial_number).toEqual(expect.any(String));
      for (const ttl of ['24h1s', '25h', '0s', 'soon', '-5m']) {
        await expectRefused(() => sign(admin, { csr: csr.pem, spiffe_id: ID, ttl }), 400, 'pki.ttl_invalid');
      }
    });

    it('refuses an ID outside the tenant trust domain, whoever asks', async () => {
      const csr = await makeCsr();
      for (const id of ['spiffe://acme.rampart.local/ns/pay', 'spiffe://evil.example/ns/pay', 'spiffe://default.rampart.local.evil/x']) {
        await expectRefused(() => sign(admin, { csr: csr.pem, spiffe_id: id }), 403, 'pki.spiffe_id_forbidden');
      }
      await expectRefused(() => sign(acmeAdmin, { csr: csr.pem, spiffe_id: ID }), 403, 'pki.spiffe_id_forbidden');
      // A trust-domain ID names a CA, never a workload (X509-SVID §3.1).
      await expectRefused(() => sign(admin, { csr: csr.pem, spiffe_id: 'spiffe://default.rampart.local' }), 400, 'pki.spiffe_id_invalid');
      await expectRefused(() => sign(admin, { csr: csr.pem, spiffe_id: 'spiffe://default.rampart.local/a/../b' }), 400, 'pki.spiffe_id_invalid');
      await expectRefused(() => sign(admin, { csr: csr.pem }), 400, 'pki.spiffe_id_invalid');
    });

    it('lets a tenant admin sign in its own tenant only', async () => {
      const csr = await makeCsr();
      const r = await sign(acmeAdmin, { csr: csr.pem, spiffe_id: 'spiffe://acme.rampart.local/billing' });
      expect(r.statusCode).toBe(200);
      expect((await s.runtime.stores.certificates.get('acme', json(r).serial_number as string))?.tenant).toBe('acme');
      await expectRefused(() => sign({ ...acmeAdmin, 'x-rampart-tenant': 'default' }, { csr: csr.pem, spiffe_id: ID }), 403, 'authz.denied');
    });

    it('refuses a caller no policy permits to sign', async () => {
      const csr = await makeCsr();
      const event = await expectRefused(() => sign(nobody, { csr: csr.pem, spiffe_id: ID }), 403, 'authz.denied');
      expect(event.action).toBe('pki:sign-request');
    });

    it('refuses a CSR that does not parse or verify', async () => {
      const csr = await makeCsr({ subject: 'CN=workload' });
      // One signed byte changed (the subject): the self-signature no longer verifies.
      const der = Buffer.from(x509.PemConverter.decode(csr.pem)[0]!);
      const at = der.indexOf('workload');
      der[at] = 'W'.charCodeAt(0);
      const tampered = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
      expect((await sign(admin, { csr: csr.pem, spiffe_id: ID })).statusCode).toBe(200);
      for (const bad of ['not a csr', `${csr.pem}${csr.pem}`, tampered, s.runtime.ca.intermediate.certificate.toString('pem')]) {
        await expectRefused(() => sign(admin, { csr: bad, spiffe_id: ID }), 400, 'pki.csr_invalid');
      }
    });

    it('refuses a CSR that asks to be a CA, audited with pki.csr_requests_ca, issuing nothing', async () => {
      for (const extensions of [
        [new x509.BasicConstraintsExtension(true, undefined, true)],
        [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true)],
        [new x509.KeyUsagesExtension(x509.KeyUsageFlags.cRLSign)],
        [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID }]),
        ],
      ]) {
        const csr = await makeCsr({ subject: 'CN=Evil Root CA', extensions });
        await expectRefused(() => sign(admin, { csr: csr.pem, spiffe_id: ID }), 400, 'pki.csr_requests_ca');
        await expectRefused(() => sign(admin, { csr: csr.pem }), 400, 'pki.csr_requests_ca');
      }
    });

    it('refuses CSR names it may not have, each with its own code, audited, issuing nothing', async () => {
      const withNames = (names: x509.JsonGeneralNames) => makeCsr({ extensions: [new x509.SubjectAlternativeNameExtension(names)] });
      const cases: Array<[x509.JsonGeneralNames, Record<string, unknown>, number, string]> = [
        [[{ type: 'url', value: ID }, { type: 'url', value: `${ID}/admin` }], { spiffe_id: ID }, 400, 'pki.csr_multiple_uris'],
        [[{ type: 'url', value: ID }, { type: 'url', value: ID }], {}, 400, 'pki.csr_multiple_uris'],
        [[{ type: 'url', value: 'spiffe://default.rampart.local/ns/pay/sa/admin' }], { spiffe_id: ID }, 400, 'pki.csr_spiffe_id_mismatch'],
        [[{ type: 'url', value: 'spiffe://acme.rampart.local/ns/pay/sa/api' }], { spiffe_id: ID }, 400, 'pki.csr_spiffe_id_mismatch'],
        [[{ type: 'url', value: 'https://bank.example/login' }], {}, 400, 'pki.spiffe_id_invalid'],
        [[{ type: 'url', value: 'spiffe://default.rampart.local' }], {}, 400, 'pki.spiffe_id_invalid'],
        [[{ type: 'url', value: 'spiffe://acme.rampart.local/ns/pay/sa/api' }], {}, 403, 'pki.spiffe_id_forbidden'],
        [[{ type: 'dns', value: 'bank.example' }], { spiffe_id: ID }, 400, 'pki.csr_san_not_allowed'],
        [[{ type: 'url', value: ID }, { type: 'ip', value: '10.0.0.1' }], {}, 400, 'pki.csr_san_not_allowed'],
        [[{ type: 'email', value: 'ops@example.com' }], { spiffe_id: ID }, 400, 'pki.csr_san_not_allowed'],
      ];
      for (const [names, body, status, code] of cases) {
        const csr = await withNames(names);
        await expectRefused(() => sign(admin, { csr: csr.pem, ...body }), status, code);
      }
    });

    it('takes the SPIFFE ID from the CSR\'s URI SAN when the body has none (the issue\'s {"csr", "ttl"} body)', async () => {
      const csr = await makeCsr({ extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `${ID}/from-csr` }])] });
      const r = await sign(admin, { csr: csr.pem, ttl: '10m' });
      expect(r.statusCode, r.body).toBe(200);
      const body = json(r) as { certificate: string; serial_number: string; spiffe_id: string };
      expect(body.spiffe_id).toBe(`${ID}/from-csr`);
      expect(svidShape(body.certificate).uris).toEqual([`${ID}/from-csr`]);
      expect(await lastAudit()).toMatchObject({ action: 'pki:sign', outcome: 'success', resource: { type: 'Rampart::SpiffeId', id: `${ID}/from-csr` } });
      // The same request with the same ID in the body as well.
      expect((await sign(admin, { csr: csr.pem, spiffe_id: `${ID}/from-csr` })).statusCode).toBe(200);
      // Cedar still decides on that ID: a tenant admin of acme may not have it, a caller with no policy nothing.
      await expectRefused(() => sign({ ...acmeAdmin, 'x-rampart-tenant': 'default' }, { csr: csr.pem }), 403, 'authz.denied');
      await expectRefused(() => sign(nobody, { csr: csr.pem }), 403, 'authz.denied');
    });
  });

  describe('revoke, CRL and OCSP', () => {
    async function issue(headers: Record<string, string>, spiffeId: string, ttl = '1h'): Promise<string> {
      const r = await sign(headers, { csr: (await makeCsr()).pem, spiffe_id: spiffeId, ttl });
      expect(r.statusCode).toBe(200);
      return json(r).serial_number as string;
    }
    async function crl(): Promise<x509.X509Crl> {
      const r = await s.app.inject({ method: 'GET', url: '/v1/pki/crl' });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('application/pkix-crl');
      return new x509.X509Crl(r.rawPayload);
    }
    const crlNumber = (c: x509.X509Crl): number => {
      const ext = c.extensions.find((e) => e.type === '2.5.29.20')!;
      return Number.parseInt(Buffer.from(ext.value).subarray(2).toString('hex'), 16);
    };
    const revoked = async (tenant: string, serial: string) => (await s.runtime.stores.certificates.get(tenant, serial))?.revokedAt ?? null;

    it('revokes by serial, once; the CRL, rebuilt with the next number, lists it with its reason', async () => {
      const before = await crl();
      expect(await before.verify({ publicKey: s.runtime.ca.intermediate.certificate.publicKey })).toBe(true);
      expect(before.issuer).toBe(s.runtime.ca.intermediate.certificate.subject);
      // Cached between revocations: the same CRL, the same number.
      expect(crlNumber(await crl())).toBe(crlNumber(before));

      const serial = await issue(admin, `${ID}/revoke-me`);
      const r = await revoke(admin, { serial_number: serial.toUpperCase().match(/../g)!.join(':'), reason: 'keyCompromise' });
      expect(r.statusCode).toBe(200);
      expect(json(r)).toEqual({ serial_numbers: [serial], newly_revoked: [serial], revocation_time: Math.floor(s.clock.now().getTime() / 1000), revocation_time_rfc3339: s.clock.now().toISOString() });
      expect((await lastAudit()).details).toEqual({ serial_numbers: [serial], newly_revoked: [serial], reason: 'keyCompromise' });
      // Again: nothing new, the first revocation stands.
      s.clock.advance(1_000);
      const again = await revoke(admin, { serial_number: serial, reason: 'superseded' });
      expect(json(again).newly_revoked).toEqual([]);
      expect((await s.runtime.stores.certificates.get('default', serial))?.revocationReason).toBe('keyCompromise');

      const after = await crl();
      expect(crlNumber(after)).toBeGreaterThan(crlNumber(before));
      expect(await after.verify({ publicKey: s.runtime.ca.intermediate.certificate.publicKey })).toBe(true);
      const entry = after.entries.find((e) => canonicalSerial(e.serialNumber) === serial);
      expect(entry?.reason).toBe(x509.X509CrlReason.keyCompromise);
      expect(after.nextUpdate!.getTime() - after.thisUpdate.getTime()).toBe(3_600_000);
      const pem = await s.app.inject({ method: 'GET', url: '/v1/pki/crl?format=pem' });
      expect(pem.body).toMatch(/^-----BEGIN X509 CRL-----/);
    });

    it('revokes every unexpired certificate of a SPIFFE ID, and prunes expired ones from the CRL', async () => {
      const id = `${ID}/many`;
      const short = await issue(admin, id, '1m');
      const a = await issue(admin, id);
      const b = await issue(admin, id);
      await revoke(admin, { serial_number: short });
      s.clock.advance(120_000);
      const r = await revoke(admin, { spiffe_id: id, reason: 'superseded' });
      expect(json(r).serial_numbers).toEqual([a, b].sort());
      const listed = (await crl()).entries.map((e) => canonicalSerial(e.serialNumber));
      expect(listed).toEqual(expect.arrayContaining([a, b]));
      expect(listed).not.toContain(short);
      await expectRefused(() => revoke(admin, { spiffe_id: `${ID}/never-issued` }), 404, 'pki.certificate_not_found');
    });

    it("cannot revoke another tenant's certificate, by serial or by SPIFFE ID", async () => {
      const serial = await issue(admin, `${ID}/victim`);
      await expectRefused(() => revoke(acmeAdmin, { serial_number: serial }), 404, 'pki.certificate_not_found');
      await expectRefused(() => revoke(acmeAdmin, { spiffe_id: `${ID}/victim` }), 404, 'pki.certificate_not_found');
      await expectRefused(() => revoke({ ...acmeAdmin, 'x-rampart-tenant': 'default' }, { serial_number: serial }), 403, 'authz.denied');
      await expectRefused(() => revoke(nobody, { serial_number: serial }), 403, 'authz.denied');
      expect(await revoked('default', serial)).toBeNull();
      // The owner can.
      expect((await revoke(admin, { serial_number: serial })).statusCode).toBe(200);
      expect(await revoked('default', serial)).toBe(s.clock.now().toISOString());
    });

    it('refuses a revocation request that names nothing, both things, or a reason revocation cannot have', async () => {
      const serial = await issue(admin, `${ID}/odd`);
      for (const payload of [{}, { serial_number: serial, spiffe_id: `${ID}/odd` }, { serial_number: serial, reason: 'certificateHold' }, { serial_number: 'zz' }]) {
        const r = await revoke(admin, payload);
        expect({ payload, status: r.statusCode, code: json(r).code }).toEqual({ payload, status: 400, code: 'request.invalid' });
      }
      expect(await revoked('default', serial)).toBeNull();
    });

    it('answers a malformed OCSP request with malformedRequest, and refuses other media types', async () => {
      const malformed = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
      const post = await s.app.inject({ method: 'POST', url: '/v1/pki/ocsp', headers: { 'content-type': 'application/ocsp-request' }, payload: Buffer.from('junk') });
      expect({ status: post.statusCode, type: post.headers['content-type'], body: post.rawPayload }).toEqual({ status: 200, type: 'application/ocsp-response', body: malformed });
      const get = await s.app.inject({ method: 'GET', url: '/v1/pki/ocsp/bm90LW9jc3A=' });
      expect(get.rawPayload).toEqual(malformed);
      const json415 = await s.app.inject({ method: 'POST', url: '/v1/pki/ocsp', payload: { x: 1 } });
      expect(json415.statusCode).toBe(415);
    });

    it('answers GET OCSP requests of realistic length (nonce, SHA-256 CertID) in base64 and base64url', async () => {
      const serial = await issue(admin, `${ID}/ocsp-get`);
      const cert = pkijs.Certificate.fromBER(new x509.X509Certificate((await s.runtime.stores.certificates.get('default', serial))!.certificatePem).rawData);
      const req = new pkijs.OCSPRequest();
      await req.createForCertificate(cert, { hashAlgorithm: 'SHA-256', issuerCertificate: pkijs.Certificate.fromBER(s.runtime.ca.intermediate.certificate.rawData) });
      req.tbsRequest.requestExtensions = [new pkijs.Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', extnValue: new asn1js.OctetString({ valueHex: new Uint8Array(32).fill(0xfb) }).toBER() })];
      const b64 = Buffer.from(req.toSchema(true).toBER()).toString('base64');
      expect(b64.length).toBeGreaterThan(150);
      for (const path of [encodeURIComponent(b64), b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')]) {
        const r = await s.app.inject({ method: 'GET', url: `/v1/pki/ocsp/${path}` });
        expect({ status: r.statusCode, type: r.headers['content-type'] }).toEqual({ status: 200, type: 'application/ocsp-response' });
        const response = pkijs.OCSPResponse.fromBER(r.rawPayload);
        expect(response.responseStatus.valueBlock.valueDec).toBe(0);
        const basic = pkijs.BasicOCSPResponse.fromBER(response.responseBytes!.response.valueBlock.valueHexView);
        expect(basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber).toBe(0);
        expect(r.headers['cache-control']).toContain('max-age=300');
      }
    });

    it('publishes the trust bundle: the roots and the issuing intermediate', async () => {
      const r = await s.app.inject({ method: 'GET', url: '/v1/pki/ca/pem' });
      expect(r.statusCode).toBe(200);
      const certs = r.body.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map((p) => new x509.X509Certificate(p).subject);
      expect(certs).toEqual([...s.runtime.ca.roots.map((c) => c.subject), s.runtime.ca.intermediate.certificate.subject]);
    });
  });
});

describe('PKI over mTLS: a workload renews its own SVID', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ listen: true });
  });
  afterAll(async () => {
    await s?.close();
  });

  async function svidFor(id: string) {
    const csr = await makeCsr();
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: bearer(s.adminToken), payload: { csr: csr.pem, spiffe_id: id } });
    const body = r.json() as { certificate: string; issuing_ca: string };
    // The server trusts only the roots: a workload presents its leaf with the issuing CA.
    return { certPem: `${body.certificate}${body.issuing_ca}`, keyPem: csr.keyPem };
  }

  it('gets a fresh SVID for its own ID with its current one, and is denied any other ID', async () => {
    const id = 'spiffe://default.rampart.local/ns/pay/sa/api';
    const client = new RampartClient({ addr: s.addr!, caPem: s.runtime.trustBundlePem, clientCert: await svidFor(id) });
    try {
      const renewed = await client.request<{ certificate: string; spiffe_id: string }>('POST', '/v1/pki/sign', { body: { csr: (await makeCsr()).pem, ttl: '10m' } });
      expect(renewed.spiffe_id).toBe(id);
      expect(svidShape(renewed.certificate).uris).toEqual([id]);
      const explicit = await client.request<{ spiffe_id: string }>('POST', '/v1/pki/sign', { body: { csr: (await makeCsr()).pem, spiffe_id: id } });
      expect(explicit.spiffe_id).toBe(id);
      for (const other of ['spiffe://default.rampart.local/ns/pay/sa/admin', 'spiffe://default.rampart.local/ns/pay/sa/api/child']) {
        const err = await client.request('POST', '/v1/pki/sign', { body: { csr: (await makeCsr()).pem, spiffe_id: other } }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RampartApiError);
        expect({ status: (err as RampartApiError).status, code: (err as RampartApiError).code }).toEqual({ status: 403, code: 'authz.denied' });
      }
      // Without spiffe_id, the CSR's URI SAN is the ID asked for, and Cedar decides on it: its
      // own is renewed, another is denied, and one that contradicts the body is refused.
      const ownInCsr = await makeCsr({ extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }])] });
      expect((await client.request<{ spiffe_id: string }>('POST', '/v1/pki/sign', { body: { csr: ownInCsr.pem } })).spiffe_id).toBe(id);
      const otherInCsr = await makeCsr({ extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://default.rampart.local/ns/pay/sa/admin' }])] });
      for (const body of [{ csr: otherInCsr.pem }, { csr: otherInCsr.pem, spiffe_id: id }]) {
        const refused = (await client.request('POST', '/v1/pki/sign', { body }).catch((e: unknown) => e)) as RampartApiError;
        expect({ status: refused.status, code: refused.code }).toEqual(body.spiffe_id ? { status: 400, code: 'pki.csr_spiffe_id_mismatch' } : { status: 403, code: 'authz.denied' });
      }
      // A workload cannot revoke (no policy grants it).
      const err = await client.request('POST', '/v1/pki/revoke', { body: { spiffe_id: id } }).catch((e: unknown) => e);
      expect((err as RampartApiError).code).toBe('authz.denied');
    } finally {
      client.close();
    }
    const rows = await s.runtime.database.db.selectFrom('pki_certificates').select('spiffe_id').execute();
    expect(rows.map((r) => r.spiffe_id)).toEqual([id, id, id, id]);
  });
});
