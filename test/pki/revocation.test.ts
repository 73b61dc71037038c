import 'reflect-metadata';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from '../../src/pki/ca.js';
import { CrlPublisher, buildCrl } from '../../src/pki/crl.js';
import { childrenOf, contentBytes, elementBytes, readTlv } from '../../src/pki/der-reader.js';
import { canonicalSerial, issuerKeyId } from '../../src/pki/issuer.js';
import { MAX_OCSP_REQUESTS, OcspResponder } from '../../src/pki/ocsp.js';
import { revokeCertificates } from '../../src/pki/revocation.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { signSvidFromCsr } from '../../src/pki/svid-signing.js';
import { SqlCertificateStore } from '../../src/store/certificate-store.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { makeCsr } from '../support/pki.js';

/**
 * Revocation, the CRL publisher and the OCSP responder over a real (SQLite) certificate store,
 * with a manual clock. The wire formats are checked by openssl in test/interop/pki.test.ts; here
 * the rules: numbering, caching, pruning, statuses, nonce, issuer matching.
 */

const HOUR = 3_600_000;
const clock = new ManualClock(Date.UTC(2026, 0, 1));
let database: StoreDatabase;
let store: SqlCertificateStore;
let issuer: CertificateAuthority;
let otherIssuer: CertificateAuthority;

beforeAll(async () => {
  database = await openDatabase({ dataDir: mkdtempSync(join(tmpdir(), 'rampart-revocation-')), inMemory: true });
  await new SqlTenantStore(database.db).create({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt: clock.now().toISOString() });
  store = new SqlCertificateStore(database.db);
  const root = await createRootCa({ commonName: 'Test Root', clock });
  issuer = await createIntermediateCa(root, { commonName: 'Test Intermediate', clock });
  otherIssuer = await createIntermediateCa(root, { commonName: 'Test Intermediate', clock });
});
afterAll(async () => {
  await database?.close();
});

async function issue(path: string, ttlMs = HOUR): Promise<x509.X509Certificate> {
  const signed = await signSvidFromCsr(issuer, {
    tenant: 'acme',
    spiffeId: parseSpiffeId(`spiffe://acme.rampart.local${path}`).id,
    csrPem: (await makeCsr()).pem,
    ttlMs,
    clock,
    advertiseAddr: 'https://h',
  });
  await store.insert(signed.record);
  return signed.certificate;
}
const serialOf = (c: x509.X509Certificate) => canonicalSerial(c.serialNumber)!;
const crlNumber = (crl: Uint8Array): number => {
  const ext = new x509.X509Crl(crl).extensions.find((e) => e.type === '2.5.29.20')!;
  return Number.parseInt(Buffer.from(ext.value).subarray(2).toString('hex'), 16);
};

describe('CrlPublisher', () => {
  it('numbers CRLs from 1, reuses one until a revocation or half its validity, and prunes expired entries', async () => {
    const crls = new CrlPublisher(issuer, store, clock);
    const first = await crls.current();
    expect(first.number).toBe(1);
    expect(crlNumber(first.der)).toBe(1);
    expect(await crls.current()).toBe(first);

    const short = await issue('/short', 10 * 60_000);
    const long = await issue('/long', 2 * HOUR);
    await revokeCertificates(store, clock, 'acme', { serialNumber: serialOf(short) }, 'unspecified');
    await revokeCertificates(store, clock, 'acme', { serialNumber: serialOf(long) }, 'superseded');
    const second = await crls.current();
    expect(second.number).toBe(2);
    const parsed = new x509.X509Crl(second.der);
    expect(await parsed.verify({ publicKey: issuer.certificate.publicKey })).toBe(true);
    expect(await parsed.verify({ publicKey: otherIssuer.certificate.publicKey })).toBe(false);
    const entries = new Map(parsed.entries.map((e) => [canonicalSerial(e.serialNumber), e.reason]));
    // RFC 5280 §5.3.1: an unspecified reason is left out.
    expect(entries).toEqual(new Map([[serialOf(short), undefined], [serialOf(long), x509.X509CrlReason.superseded]]));
    const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
    expect(aki?.keyId).toBe(issuerKeyId(issuer));

    clock.advance(29 * 60_000);
    expect(await crls.current()).toBe(second);
    clock.advance(60_000);
    const third = await crls.current();
    expect(third.number).toBe(3);
    expect(new x509.X509Crl(third.der).entries.map((e) => canonicalSerial(e.serialNumber))).toEqual([serialOf(long)]);
    // Another publisher (a replica, a restart) continues the sequence.
    expect((await new CrlPublisher(issuer, store, clock).current()).number).toBe(4);
  });

  it('builds one CRL for concurrent requests', async () => {
    const crls = new CrlPublisher(issuer, store, clock);
    const [a, b, c] = await Promise.all([crls.current(), crls.current(), crls.current()]);
    expect(a).toBe(b);
    expect(b).toBe(c);
  });
});

describe('buildCrl', () => {
  it.each(['ed25519', 'rsa-2048'] as const)('signs with a %s issuing CA too', async (algorithm) => {
    const root = await createRootCa({ commonName: 'Test Root', clock, algorithm });
    const ca = await createIntermediateCa(root, { commonName: 'Test Intermediate', clock, algorithm });
    const entry = { serialNumber: '7f01', revokedAt: clock.now().toISOString(), reason: 'keyCompromise' as const, notAfter: clock.now().toISOString() };
    const crl = new x509.X509Crl(await buildCrl(ca, { number: 7, thisUpdate: clock.now(), nextUpdate: new Date(clock.now().getTime() + HOUR), entries: [entry] }));
    expect(await crl.verify({ publicKey: ca.certificate.publicKey })).toBe(true);
    expect(crl.entries.map((e) => [canonicalSerial(e.serialNumber), e.reason])).toEqual([['7f01', x509.X509CrlReason.keyCompromise]]);
  });

  // Regression: the CRL used to be encoded by a library whose cost grows with the square of the
  // entry count (20,000 entries took 94 s, so 50,000 would take about ten minutes). Tests never
  // assert on time: a quadratic encoder shows up as this test hitting the suite's hang guard
  // (vitest.config.ts), and what is asserted is the result: all 50,000 entries, in order, signed.
  it('encodes 50,000 entries, signed by the issuer, times after 2049 as GeneralizedTime', async () => {
    const revokedAt = new Date(Date.UTC(2051, 5, 1, 12, 0, 0)).toISOString();
    const serialOfEntry = (i: number) => `7f${i.toString(16).padStart(30, '0')}`;
    const entries = Array.from({ length: 50_000 }, (_, i) => ({ serialNumber: serialOfEntry(i), revokedAt, reason: 'superseded' as const, notAfter: revokedAt }));
    const crl = await buildCrl(issuer, { number: 1, thisUpdate: clock.now(), nextUpdate: new Date(clock.now().getTime() + HOUR), entries });
    // Walked with the DER reader: asn1js refuses to parse a structure this large.
    const [tbs, , signature] = childrenOf(crl, readTlv(crl, 0));
    const revokedList = childrenOf(crl, tbs!).find((t, i) => i > 2 && t.tag === 0x30 && childrenOf(crl, t)[0]?.tag === 0x30)!;
    const listed = childrenOf(crl, revokedList).map((entry) => Buffer.from(contentBytes(crl, childrenOf(crl, entry)[0]!)).toString('hex'));
    expect(listed).toHaveLength(50_000);
    expect(listed).toEqual(entries.map((e) => e.serialNumber));
    const issuerKey = createPublicKey({ key: Buffer.from(issuer.certificate.publicKey.rawData), format: 'der', type: 'spki' });
    expect(verify('sha256', elementBytes(crl, tbs!), issuerKey, contentBytes(crl, signature!).subarray(1))).toBe(true);
    // Spot-check the encoding: the last entry's serial and its GeneralizedTime (tag 0x18).
    const last = Buffer.from(crl).indexOf(Buffer.from(`7f${(49_999).toString(16).padStart(30, '0')}`, 'hex'));
    expect(last).toBeGreaterThan(0);
    expect(Buffer.from(crl)[last + 16]).toBe(0x18);
    expect(Buffer.from(crl).subarray(last + 18, last + 33).toString('ascii')).toBe('20510601120000Z');
  });
});

describe('OcspResponder', () => {
  const lookup = (serial: string) => store.byIssuer(issuerKeyId(issuer), serial);
  const toPkijs = (c: x509.X509Certificate) => pkijs.Certificate.fromBER(c.rawData);

  async function request(certs: x509.X509Certificate[], options: { hash?: string; issuerCert?: x509.X509Certificate; nonce?: Uint8Array } = {}): Promise<Uint8Array> {
    const req = new pkijs.OCSPRequest();
    for (const c of certs) {
      const certId = await pkijs.CertID.create(toPkijs(c), { hashAlgorithm: options.hash ?? 'SHA-1', issuerCertificate: toPkijs(options.issuerCert ?? issuer.certificate) });
      req.tbsRequest.requestList.push(new pkijs.Request({ reqCert: certId }));
    }
    if (options.nonce) {
      req.tbsRequest.requestExtensions = [new pkijs.Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', extnValue: new asn1js.OctetString({ valueHex: options.nonce }).toBER() })];
    }
    return new Uint8Array(req.toSchema(true).toBER());
  }

  function parse(der: Uint8Array) {
    const response = pkijs.OCSPResponse.fromBER(der);
    const status = response.responseStatus.valueBlock.valueDec;
    if (!response.responseBytes) return { status, basic: undefined };
    return { status, basic: pkijs.BasicOCSPResponse.fromBER(response.responseBytes.response.valueBlock.valueHexView) };
  }

  it('answers good, revoked (time and reason) and unknown, signed by the issuer, echoing the nonce', async () => {
    const good = await issue('/good');
    const bad = await issue('/bad');
    clock.advance(1_500);
    await revokeCertificates(store, clock, 'acme', { serialNumber: serialOf(bad) }, 'keyCompromise');
    const stranger = await signSvidFromCsr(otherIssuer, { tenant: 'acme', spiffeId: parseSpiffeId('spiffe://acme.rampart.local/x').id, csrPem: (await makeCsr()).pem, ttlMs: HOUR, clock, advertiseAddr: 'https://h' });
    const never = await signSvidFromCsr(issuer, { tenant: 'acme', spiffeId: parseSpiffeId('spiffe://acme.rampart.local/y').id, csrPem: (await makeCsr()).pem, ttlMs: HOUR, clock, advertiseAddr: 'https://h' });

    const responder = new OcspResponder(issuer, lookup, clock);
    const nonce = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    const answer = await responder.respond(await request([good, bad, never.certificate], { nonce }));
    expect(answer.statuses).toEqual(['good', 'revoked', 'unknown']);
    const { status, basic } = parse(answer.der);
    expect(status).toBe(0);
    const singles = basic!.tbsResponseData.responses;
    expect(singles.map((r) => r.certStatus.idBlock.tagNumber)).toEqual([0, 1, 2]);
    const revokedInfo = singles[1]!.certStatus as asn1js.Constructed;
    expect((revokedInfo.valueBlock.value[0] as asn1js.GeneralizedTime).toDate()).toEqual(new Date(Math.floor(clock.now().getTime() / 1000) * 1000));
    expect(((revokedInfo.valueBlock.value[1] as asn1js.Constructed).valueBlock.value[0] as asn1js.Enumerated).valueBlock.valueDec).toBe(1);
    expect(singles[0]!.nextUpdate!.getTime() - singles[0]!.thisUpdate.getTime()).toBe(300_000);
    // The nonce comes back exactly; the responder is named by the SHA-1 of its key.
    const echoed = basic!.tbsResponseData.responseExtensions!.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2')!;
    expect(Buffer.from(echoed.extnValue.valueBlock.valueHexView)).toEqual(Buffer.from(new asn1js.OctetString({ valueHex: nonce }).toBER()));
    const keyHash = await crypto.subtle.digest('SHA-1', toPkijs(issuer.certificate).subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
    expect(Buffer.from((basic!.tbsResponseData.responderID as asn1js.OctetString).valueBlock.valueHexView)).toEqual(Buffer.from(keyHash));
    // Signed by the issuing CA: verify with its public key over the DER of tbsResponseData.
    const signedBytes = basic!.tbsResponseData.toSchema(true).toBER();
    const signature = new x509.AsnEcSignatureFormatter().toWebSignature({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as never, basic!.signature.valueBlock.valueHexView);
    const key = await issuer.certificate.publicKey.export({ name: 'ECDSA', namedCurve: 'P-256' }, ['verify']);
    expect(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature!, signedBytes)).toBe(true);

    // Another issuer's certificate, even with a serial we know: unknown, never good.
    const foreign = await responder.respond(await request([stranger.certificate], { issuerCert: otherIssuer.certificate }));
    expect(foreign.statuses).toEqual(['unknown']);
    // A CertID over SHA-256 matches as well as SHA-1.
    expect((await responder.respond(await request([good, bad], { hash: 'SHA-256' }))).statuses).toEqual(['good', 'revoked']);
  });

  it('answers malformedRequest to junk, an empty list, too many requests and an oversized nonce', async () => {
    const responder = new OcspResponder(issuer, lookup, clock);
    const good = await issue('/many');
    for (const der of [
      new Uint8Array([1, 2, 3]),
      await request([]),
      await request(Array.from({ length: MAX_OCSP_REQUESTS + 1 }, () => good)),
      await request([good], { nonce: new Uint8Array(33) }),
      new Uint8Array([...(await request([good])), 0]),
    ]) {
      const answer = await responder.respond(der);
      expect(answer.error?.code).toBe('pki.ocsp_request_invalid');
      expect(parse(answer.der)).toEqual({ status: 1, basic: undefined });
    }
    expect((await responder.respond(await request(Array.from({ length: MAX_OCSP_REQUESTS }, () => good)))).statuses).toHaveLength(MAX_OCSP_REQUESTS);
  });
});

describe('revokeCertificates', () => {
  it('revokes every unexpired certificate of an ID in the tenant, and nothing of an unknown one', async () => {
    const a = await issue('/svc');
    const b = await issue('/svc');
    const r = await revokeCertificates(store, clock, 'acme', { spiffeId: 'spiffe://acme.rampart.local/svc' }, 'cessationOfOperation');
    expect(r.serialNumbers).toEqual([serialOf(a), serialOf(b)].sort());
    expect(r.newlyRevoked).toEqual(r.serialNumbers);
    expect(r.issuers).toEqual([issuerKeyId(issuer)]);
    await expect(revokeCertificates(store, clock, 'acme', { spiffeId: 'spiffe://acme.rampart.local/none' }, 'unspecified')).rejects.toMatchObject({ code: 'pki.certificate_not_found' });
    await expect(revokeCertificates(store, clock, 'acme', { serialNumber: 'not hex' }, 'unspecified')).rejects.toMatchObject({ code: 'pki.certificate_not_found' });
  });
});
