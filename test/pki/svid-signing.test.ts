import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import * as pkijs from 'pkijs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from '../../src/pki/ca.js';
import { canonicalSerial, issuerKeyId } from '../../src/pki/issuer.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { resolveSvidTtl, signSvidFromCsr, svidIdentityFor } from '../../src/pki/svid-signing.js';
import { makeCsr, type TestCsr, svidShape } from '../support/pki.js';

const HOUR = 3_600_000;

describe('resolveSvidTtl', () => {
  it('defaults to 1h, or the maximum when that is lower', () => {
    expect(resolveSvidTtl(undefined, 24 * HOUR)).toBe(HOUR);
    expect(resolveSvidTtl(undefined, 10 * 60_000)).toBe(10 * 60_000);
  });
  it('accepts durations within [1s, max], the bounds included', () => {
    expect(resolveSvidTtl('10m', 24 * HOUR)).toBe(600_000);
    expect(resolveSvidTtl('1s', 24 * HOUR)).toBe(1_000);
    expect(resolveSvidTtl('24h', 24 * HOUR)).toBe(24 * HOUR);
    expect(resolveSvidTtl('3600', 24 * HOUR)).toBe(HOUR);
  });
  it.each(['24h1s', '25h', '0', '0s', '999ms', '', 'soon', '1 h', '-1h', '1e3'])('refuses %j with pki.ttl_invalid', (ttl) => {
    expect(() => resolveSvidTtl(ttl, 24 * HOUR)).toThrow(expect.objectContaining({ code: 'pki.ttl_invalid' }));
  });
});

describe('svidIdentityFor', () => {
  it("accepts a leaf ID in the tenant's trust domain", () => {
    expect(svidIdentityFor('spiffe://acme.rampart.local/ns/pay', 'acme.rampart.local')).toBe('spiffe://acme.rampart.local/ns/pay');
  });
  it.each([
    ['spiffe://globex.rampart.local/ns/pay', 'pki.spiffe_id_forbidden'],
    ['spiffe://acme.rampart.local.evil/ns/pay', 'pki.spiffe_id_forbidden'],
    ['spiffe://rampart.local/ns/pay', 'pki.spiffe_id_forbidden'],
    ['spiffe://acme.rampart.local', 'pki.spiffe_id_invalid'],
    ['spiffe://ACME.rampart.local/x', 'pki.spiffe_id_invalid'],
    ['https://acme.rampart.local/x', 'pki.spiffe_id_invalid'],
    ['spiffe://acme.rampart.local/x/', 'pki.spiffe_id_invalid'],
  ])('refuses %s with %s', (id, code) => {
    expect(() => svidIdentityFor(id, 'acme.rampart.local')).toThrow(expect.objectContaining({ code }));
  });
});

describe('canonicalSerial', () => {
  it.each([
    ['0A:1b', '0a1b'],
    ['00ff', '00ff'],
    ['ff', '00ff'],
    ['80', '0080'],
    ['FF01', '00ff01'],
    ['007f', '7f'],
    ['0000000001', '01'],
    ['abc', '0abc'],
    ['7F'.repeat(20), '7f'.repeat(20)],
    [`00${'ff'.repeat(19)}`, `00${'ff'.repeat(19)}`],
    ['ff'.repeat(19), `00${'ff'.repeat(19)}`],
  ])('%s → %s', (input, out) => expect(canonicalSerial(input)).toBe(out));
  it.each(['', 'zz', '00', '0', '7f'.repeat(21), 'ff'.repeat(20), '0x01', '-01'])('refuses %j', (input) => expect(canonicalSerial(input)).toBeUndefined());

  // Regression: a serial whose first octet has the high bit set is encoded with a 00 octet that
  // @peculiar/x509 leaves out of `serialNumber`; such certificates (1 in 128) failed to issue.
  it('agrees with the DER of certificates whose serial has the high bit set', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const keys = await makeCsr();
    for (const serialNumber of ['009b2f8e6dde67974822747ac400b519', '7b2f8e6dde67974822747ac400b519ff']) {
      const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber, name: 'CN=x', keys: keys.keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, notBefore: clock.now(), notAfter: clock.now() });
      const der = Buffer.from(pkijs.Certificate.fromBER(cert.rawData).serialNumber.valueBlock.valueHexView).toString('hex');
      expect(canonicalSerial(cert.serialNumber)).toBe(der);
      expect(der).toBe(serialNumber);
    }
  });
});

describe('signSvidFromCsr', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let issuer: CertificateAuthority;
  let csrs: TestCsr[];
  beforeAll(async () => {
    const root = await createRootCa({ commonName: 'Test Root', clock });
    issuer = await createIntermediateCa(root, { commonName: 'Test Intermediate', clock });
    // Requests with a subject and with extensions the leaf does not copy (cA=false, other key
    // usages, codeSigning): none of it reaches the certificate.
    csrs = await Promise.all([
      makeCsr(),
      makeCsr({ subject: 'CN=admin' }),
      makeCsr({
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.dataEncipherment),
          new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.3']),
        ],
      }),
    ]);
  });

  const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/).filter((s) => s !== '.' && s !== '..');
  const path = fc.array(segment, { minLength: 1, maxLength: 6 }).map((segments) => `/${segments.join('/')}`);

  // The SVID rules hold for every leaf, whatever the path and whatever else the CSR asked for.
  it('issues exactly one URI SAN, cA=false, critical digitalSignature only, EKU server+client', async () => {
    await fc.assert(
      fc.asyncProperty(path, fc.nat({ max: 2 }), fc.integer({ min: 1, max: 24 * 3600 }), async (p, which, ttlSeconds) => {
        const spiffeId = parseSpiffeId(`spiffe://acme.rampart.local${p}`).id;
        const { certificate, record } = await signSvidFromCsr(issuer, {
          tenant: 'acme',
          spiffeId,
          csrPem: csrs[which]!.pem,
          ttlMs: ttlSeconds * 1000,
          clock,
          advertiseAddr: 'https://rampart.example:8443',
        });
        const shape = svidShape(certificate.toString('pem'));
        expect(shape.uris).toEqual([spiffeId]);
        expect(shape.otherNames).toEqual([]);
        expect({ ca: shape.ca, bcCritical: shape.bcCritical }).toEqual({ ca: false, bcCritical: true });
        expect({ ku: shape.keyUsage, critical: shape.keyUsageCritical }).toEqual({ ku: x509.KeyUsageFlags.digitalSignature, critical: true });
        expect(shape.eku).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
        // The issuer's own CRL, so that it keeps answering after a rotation.
        expect(shape.crlUrls).toEqual([`https://rampart.example:8443/v1/pki/issuers/${issuerKeyId(issuer)}/crl`]);
        expect(shape.ocspUrls).toEqual(['https://rampart.example:8443/v1/pki/ocsp']);
        expect(certificate.notAfter.getTime() - clock.now().getTime()).toBe(ttlSeconds * 1000);
        expect(record).toMatchObject({ tenant: 'acme', spiffeId, issuer: issuerKeyId(issuer), serialNumber: canonicalSerial(certificate.serialNumber), revokedAt: null });
      }),
      { numRuns: 60 },
    );
  });

  it('refuses a CSR that does not verify, before issuing', async () => {
    await expect(
      signSvidFromCsr(issuer, { tenant: 'acme', spiffeId: parseSpiffeId('spiffe://acme.rampart.local/x').id, csrPem: 'junk', ttlMs: HOUR, clock, advertiseAddr: 'https://h' }),
    ).rejects.toMatchObject({ code: 'pki.csr_invalid' });
  });
});
