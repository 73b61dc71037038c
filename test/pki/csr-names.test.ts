import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from '../../src/pki/ca.js';
import * as der from '../../src/pki/der.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { readSvidRequest } from '../../src/pki/svid-request.js';
import { resolveSvidIdentity, signSvidFromCsr } from '../../src/pki/svid-signing.js';
import { makeCsr, svidShape } from '../support/pki.js';
import { BASIC_CONSTRAINTS, DNS, EMAIL, extension, extensionRequest, IP, KEY_USAGE, rawCsr, SUBJECT_ALT_NAME, sanValue, URI } from './csr-raw.js';

/**
 * The names a CSR asks for (X509-SVID §2: exactly one URI SAN, the SPIFFE ID): at most one URI,
 * which must be a SPIFFE ID and, when the body also names one, the same one; DNS names only when
 * granted; no other name types; and a well-formed extensionRequest.
 */

const TD = 'acme.rampart.local';
const ID = parseSpiffeId(`spiffe://${TD}/ns/pay/sa/api`).id;
const san = (...names: Array<readonly [number, string]>) => rawCsr([extensionRequest([extension(SUBJECT_ALT_NAME, false, sanValue(names))])]);
const peculiarSan = (names: x509.JsonGeneralNames) => makeCsr({ extensions: [new x509.SubjectAlternativeNameExtension(names)] });

describe('readSvidRequest', () => {
  it('returns the key, the URI SAN as a SPIFFE ID and the DNS SANs, lowercased and once each', async () => {
    const r = await readSvidRequest(san([URI, ID], [DNS, 'API.Pay.Example'], [DNS, 'api.pay.example']));
    expect({ spiffeId: r.spiffeId, dnsNames: r.dnsNames, algorithm: r.publicKey.algorithm }).toEqual({ spiffeId: ID, dnsNames: ['api.pay.example'], algorithm: 'ecdsa-p256' });
    const none = await readSvidRequest((await makeCsr({ subject: 'CN=anything' })).pem);
    expect({ spiffeId: none.spiffeId, dnsNames: none.dnsNames }).toEqual({ spiffeId: undefined, dnsNames: [] });
  });

  it('refuses more than one URI SAN with pki.csr_multiple_uris, even when one is right', async () => {
    await expect(readSvidRequest((await peculiarSan([{ type: 'url', value: ID }, { type: 'url', value: `spiffe://${TD}/admin` }])).pem)).rejects.toMatchObject({ code: 'pki.csr_multiple_uris' });
    await expect(readSvidRequest(san([URI, ID], [URI, ID]))).rejects.toMatchObject({ code: 'pki.csr_multiple_uris' });
    await expect(readSvidRequest(san([URI, ID], [DNS, 'x.example'], [URI, 'https://bank.example/']))).rejects.toMatchObject({ code: 'pki.csr_multiple_uris' });
  });

  it.each([
    'https://acme.rampart.local/ns/pay',
    'spiffe://ACME.rampart.local/x',
    'spiffe://acme.rampart.local/a/../b',
    'spiffe://acme.rampart.local/x?admin=1',
    'spiffe://user@acme.rampart.local/x',
    'spiffe://acme.rampart.local/caf\u00e9',
    '',
  ])('refuses the URI SAN %j, which is not a SPIFFE ID, with pki.spiffe_id_invalid', async (uri) => {
    await expect(readSvidRequest(san([URI, uri]))).rejects.toMatchObject({ code: 'pki.spiffe_id_invalid', message: expect.stringContaining("The CSR's URI SAN") });
  });

  it.each<[string, Array<readonly [number, string]>, string[]]>([
    ['an IP address', [[IP, '10.0.0.1']], ['iPAddress']],
    ['an email address', [[EMAIL, 'root@example.com']], ['rfc822Name (email)']],
    ['an IP address next to a valid URI', [[URI, ID], [IP, '127.0.0.1']], ['iPAddress']],
  ])('refuses %s with pki.csr_san_not_allowed', async (_name, names, types) => {
    await expect(readSvidRequest(san(...names))).rejects.toMatchObject({ code: 'pki.csr_san_not_allowed', details: { types } });
  });

  it.each<[string, () => string]>([
    ['an extension requested twice', () => rawCsr([extensionRequest([extension(KEY_USAGE, true, Buffer.from([0x03, 0x02, 0x07, 0x80])), extension(KEY_USAGE, true, Buffer.from([0x03, 0x02, 0x07, 0x80]))])])],
    ['two extensionRequest attributes', () => rawCsr([extensionRequest([extension(SUBJECT_ALT_NAME, false, sanValue([[URI, ID]]))]), extensionRequest([])])],
    ['an extensionRequest with two values', () => rawCsr([der.sequence(der.oid('1.2.840.113549.1.9.14'), der.tlv(0x31, der.sequence(), der.sequence()))])],
    ['a subjectAltName that is not GeneralNames', () => rawCsr([extensionRequest([extension(SUBJECT_ALT_NAME, false, der.octetString(Buffer.from('x')))])])],
    ['an unknown GeneralName tag', () => rawCsr([extensionRequest([extension(SUBJECT_ALT_NAME, false, der.sequence(der.tlv(0x89, Buffer.from('x'))))])])],
    ['a basicConstraints BOOLEAN of two octets', () => rawCsr([extensionRequest([extension(BASIC_CONSTRAINTS, true, Buffer.from([0x30, 0x04, 0x01, 0x02, 0xff, 0xff]))])])],
    ['an extnValue with trailing bytes', () => rawCsr([extensionRequest([extension(BASIC_CONSTRAINTS, true, Buffer.from([0x30, 0x00, 0x00]))])])],
    ['a keyUsage with 9 unused bits', () => rawCsr([extensionRequest([extension(KEY_USAGE, true, Buffer.from([0x03, 0x02, 0x09, 0x80]))])])],
    ['a critical flag that is not a BOOLEAN', () => rawCsr([extensionRequest([der.sequence(der.oid(KEY_USAGE), der.integer(1), der.octetString(Buffer.from([0x03, 0x02, 0x07, 0x80])))])])],
  ])('refuses %s with pki.csr_invalid', async (_name, make) => {
    await expect(readSvidRequest(make())).rejects.toMatchObject({ code: 'pki.csr_invalid', message: expect.stringContaining('extensionRequest') });
  });

  it('checks the signature before reading anything: a CA request whose signature fails is pki.csr_invalid', async () => {
    const pem = (await makeCsr({ extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] })).pem;
    const bytes = Buffer.from(x509.PemConverter.decodeFirst(pem));
    bytes[bytes.length - 1]! ^= 0x01;
    await expect(readSvidRequest(x509.PemConverter.encode(bytes, 'CERTIFICATE REQUEST'))).rejects.toMatchObject({ code: 'pki.csr_invalid', message: expect.stringMatching(/signature does not verify/) });
  });

  // Whatever bytes sit in a SAN, the reader answers with one of its codes or a request; it never
  // throws anything else (a TypeError or RangeError would surface as a 500).
  it('property: arbitrary SAN contents yield a request or a coded PkiError', async () => {
    const name = fc.tuple(fc.constantFrom(0x81, 0x82, 0x86, 0x87, 0x88, 0x89, 0xa0, 0xa4), fc.uint8Array({ maxLength: 30 }));
    await fc.assert(
      fc.asyncProperty(fc.array(name, { maxLength: 4 }), async (names) => {
        const value = der.sequenceOf(names.map(([tag, bytes]) => (tag & 0x20 ? der.tlv(tag, der.octetString(bytes)) : der.tlv(tag, bytes))));
        const outcome = await readSvidRequest(rawCsr([extensionRequest([extension(SUBJECT_ALT_NAME, false, value)])])).catch((e: unknown) => e);
        if (outcome instanceof Error) expect((outcome as { code?: string }).code).toMatch(/^pki\.(csr_invalid|csr_multiple_uris|spiffe_id_invalid|csr_san_not_allowed)$/);
        else expect(outcome).toHaveProperty('publicKey');
      }),
      { numRuns: 100 },
    );
  });
});

describe('resolveSvidIdentity', () => {
  const req = async (...names: Array<readonly [number, string]>) => readSvidRequest(names.length === 0 ? rawCsr([]) : san(...names));

  it("takes the body's ID, then the CSR's URI SAN, then the caller's own", async () => {
    expect(resolveSvidIdentity(await req(), TD, { explicit: ID })).toBe(ID);
    expect(resolveSvidIdentity(await req([URI, ID]), TD, { explicit: ID })).toBe(ID);
    expect(resolveSvidIdentity(await req([URI, ID]), TD, {})).toBe(ID);
    expect(resolveSvidIdentity(await req([URI, ID]), TD, { fallback: `spiffe://${TD}/me` })).toBe(ID);
    expect(resolveSvidIdentity(await req(), TD, { fallback: `spiffe://${TD}/me` })).toBe(`spiffe://${TD}/me`);
  });

  it("refuses a CSR URI SAN other than the body's ID with pki.csr_spiffe_id_mismatch", async () => {
    await expect((async () => resolveSvidIdentity(await req([URI, `spiffe://${TD}/admin`]), TD, { explicit: ID }))()).rejects.toMatchObject({
      code: 'pki.csr_spiffe_id_mismatch',
      details: { csr_spiffe_id: `spiffe://${TD}/admin`, spiffe_id: ID },
    });
    // Another tenant's ID in the CSR is a mismatch too, not a way around the trust-domain check.
    await expect((async () => resolveSvidIdentity(await req([URI, 'spiffe://globex.rampart.local/ns/pay/sa/api']), TD, { explicit: ID }))()).rejects.toMatchObject({ code: 'pki.csr_spiffe_id_mismatch' });
  });

  it.each([
    ['spiffe://globex.rampart.local/ns/pay', 'pki.spiffe_id_forbidden'],
    ['spiffe://acme.rampart.local.evil/ns/pay', 'pki.spiffe_id_forbidden'],
    ['spiffe://acme.rampart.local', 'pki.spiffe_id_invalid'],
  ])('holds a URI SAN %s to the tenant trust domain like a body ID: %s', async (uri, code) => {
    const r = await req([URI, uri]);
    expect(() => resolveSvidIdentity(r, TD, {})).toThrow(expect.objectContaining({ code, message: expect.stringContaining("The CSR's URI SAN") }));
  });

  it('refuses a request that names no ID anywhere with pki.spiffe_id_invalid', async () => {
    expect(() => resolveSvidIdentity({ publicKey: { spki: new Uint8Array(), algorithm: 'ecdsa-p256' }, dnsNames: [] }, TD, {})).toThrow(expect.objectContaining({ code: 'pki.spiffe_id_invalid' }));
  });
});

describe('signSvidFromCsr and the names a CSR asks for', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let issuer: CertificateAuthority;
  beforeAll(async () => {
    const root = await createRootCa({ commonName: 'Test Root', clock });
    issuer = await createIntermediateCa(root, { commonName: 'Test Intermediate', clock });
  });
  const sign = (csrPem: string, dnsNames?: string[]) =>
    signSvidFromCsr(issuer, { tenant: 'acme', spiffeId: ID, csrPem, ttlMs: 3_600_000, clock, advertiseAddr: 'https://h', ...(dnsNames ? { dnsNames } : {}) });

  it('issues to a CSR whose URI SAN is the ID to issue, and refuses one naming another ID', async () => {
    expect(svidShape((await sign(san([URI, ID]))).certificate.toString('pem')).uris).toEqual([ID]);
    await expect(sign(san([URI, `spiffe://${TD}/admin`]))).rejects.toMatchObject({ code: 'pki.csr_spiffe_id_mismatch' });
  });

  it("honours CSR DNS SANs only among the granted names (a registration entry's dns_names), case-insensitively", async () => {
    const granted = ['api.pay.example', 'pay.internal'];
    const issued = await sign(san([URI, ID], [DNS, 'API.pay.example']), granted);
    // The certificate carries the granted names, as it always has; the CSR only asked within them.
    expect(svidShape(issued.certificate.toString('pem')).otherNames).toEqual(['dns:api.pay.example', 'dns:pay.internal']);
    await expect(sign(san([DNS, 'bank.example']), granted)).rejects.toMatchObject({ code: 'pki.csr_san_not_allowed', details: { types: ['dNSName'] } });
    await expect(sign(san([DNS, 'api.pay.example']), [])).rejects.toMatchObject({ code: 'pki.csr_san_not_allowed' });
    await expect(sign(san([DNS, 'api.pay.example']))).rejects.toMatchObject({ code: 'pki.csr_san_not_allowed' });
    // The requester's bytes reach the error (and the audit log) printable only.
    await expect(sign(san([DNS, 'evil\r\nX-Injected: 1']))).rejects.toMatchObject({ code: 'pki.csr_san_not_allowed', message: expect.stringContaining('evil??x-injected:?1') });
  });
});
