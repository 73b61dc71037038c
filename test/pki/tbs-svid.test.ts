import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa, issueSvidDer } from '../../src/pki/ca.js';
import { childrenOf, elementBytes, readTlv } from '../../src/pki/der-reader.js';
import { type CryptoKey, generateKeyPair, type KeyAlgorithm, signingAlgorithmFor } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';

/**
 * The SVID written directly as DER (src/pki/tbs-svid.ts) must be byte for byte the certificate
 * @peculiar/x509's generator produced before it: the same TBSCertificate for any SPIFFE ID, DNS
 * names, lifetime, distribution URLs and subject, and a signature that verifies under the issuer.
 */

const tbsOf = (der: Uint8Array): Buffer => {
  const [tbs] = childrenOf(der, readTlv(der, 0));
  return Buffer.from(elementBytes(der, tbs!));
};

/** The leaf as the object model built it (the former issueSvid), with the same serial and validity. */
async function referenceSvid(issuer: CertificateAuthority, leaf: x509.X509Certificate, publicKey: CryptoKey, o: { id: string; dns: string[]; cn?: string; crl?: string; ocsp?: string }): Promise<x509.X509Certificate> {
  const ski = new x509.SubjectKeyIdentifierExtension(issuer.certificate.getExtension('2.5.29.14')!.rawData).keyId;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: o.id }, ...o.dns.map((value) => ({ type: 'dns' as const, value }))], o.cn === undefined),
  ];
  if (o.crl) extensions.push(new x509.CRLDistributionPointsExtension([o.crl], false));
  if (o.ocsp) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [o.ocsp] }, false));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(publicKey), new x509.AuthorityKeyIdentifierExtension(ski));
  return x509.X509CertificateGenerator.create({
    serialNumber: leaf.serialNumber,
    issuer: issuer.certificate.subjectName,
    ...(o.cn === undefined ? {} : { subject: [{ CN: [o.cn] }] }),
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    publicKey,
    signingKey: issuer.privateKey,
    signingAlgorithm: signingAlgorithmFor(issuer.algorithm),
    extensions,
  });
}

describe('the directly written SVID', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const issuers = new Map<KeyAlgorithm, CertificateAuthority>();
  const leafKeys = new Map<KeyAlgorithm, webcrypto.CryptoKeyPair>();

  beforeAll(async () => {
    const root = await createRootCa({ commonName: 'Root', clock });
    for (const alg of ['ecdsa-p256', 'ed25519', 'rsa-2048'] as const) {
      issuers.set(alg, await createIntermediateCa(root, { commonName: `Intermediate ${alg}`, clock, algorithm: alg }));
      leafKeys.set(alg, await generateKeyPair(alg));
    }
  }, 30_000);

  const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,16}$/).filter((s) => s !== '.' && s !== '..');
  const label = fc.stringMatching(/^[a-z0-9]{1,12}$/);
  const options = fc.record({
    path: fc.array(segment, { minLength: 1, maxLength: 4 }),
    dns: fc.array(fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.')), { maxLength: 2 }),
    ttlSeconds: fc.integer({ min: 1, max: 48 * 3600 }),
    cn: fc.option(fc.stringMatching(/^[A-Za-z0-9 ]{1,20}$/), { nil: undefined }),
    urls: fc.boolean(),
    issuer: fc.constantFrom<KeyAlgorithm>('ecdsa-p256', 'ed25519', 'rsa-2048'),
    leaf: fc.constantFrom<KeyAlgorithm>('ecdsa-p256', 'ed25519', 'rsa-2048'),
  });

  it('has exactly the TBSCertificate of the object-model encoding, and a signature that verifies', async () => {
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        const issuer = issuers.get(o.issuer)!;
        const { publicKey } = leafKeys.get(o.leaf)!;
        const id = parseSpiffeId(`spiffe://acme.rampart.local/${o.path.join('/')}`).id;
        const urls = o.urls ? { crl: 'https://rampart.example:8443/v1/pki/issuers/ab/crl', ocsp: 'https://rampart.example:8443/v1/pki/ocsp' } : {};
        const issued = await issueSvidDer(issuer, {
          publicKey,
          spiffeId: id,
          dnsNames: o.dns,
          clock,
          ttlMs: o.ttlSeconds * 1000,
          ...(o.cn === undefined ? {} : { commonName: o.cn }),
          ...(o.urls ? { crlDistributionUrl: urls.crl, ocspUrl: urls.ocsp } : {}),
        });
        const leaf = new x509.X509Certificate(issued.der);
        const reference = await referenceSvid(issuer, leaf, publicKey, { id, dns: o.dns, ...(o.cn === undefined ? {} : { cn: o.cn }), ...urls });
        expect(tbsOf(issued.der).equals(tbsOf(new Uint8Array(reference.rawData)))).toBe(true);
        expect(await leaf.verify({ publicKey: issuer.certificate.publicKey, date: clock.now() })).toBe(true);
        expect(issued.notAfter.getTime()).toBe(leaf.notAfter.getTime());
      }),
      { numRuns: 60 },
    );
  }, 60_000);
});
