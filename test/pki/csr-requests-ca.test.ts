import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from '../../src/pki/ca.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { issuerKeyId } from '../../src/pki/issuer.js';
import { signSvidFromCsr } from '../../src/pki/svid-signing.js';
import { makeCsr, svidShape } from '../support/pki.js';

/**
 * Security regression: a CSR that asks to be a CA (or for any other extension or name) must
 * never get it. The signer takes the CSR's public key and nothing else, so the leaf carries
 * exactly the extensions the CA chose, whatever the request said.
 */
describe('a CSR that requests CA powers', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let issuer: CertificateAuthority;
  beforeAll(async () => {
    const root = await createRootCa({ commonName: 'Test Root', clock });
    issuer = await createIntermediateCa(root, { commonName: 'Test Intermediate', clock });
  });

  it('gets a leaf with only the CA-chosen extensions and the requested SPIFFE ID', async () => {
    const csr = await makeCsr({
      subject: 'CN=Evil Intermediate, O=Attacker',
      extensions: [
        new x509.BasicConstraintsExtension(true, 5, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.3'], true), // codeSigning
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'spiffe://acme.rampart.local/admin' },
          { type: 'url', value: 'spiffe://globex.rampart.local/api' },
          { type: 'dns', value: 'bank.example' },
        ]),
        new x509.CRLDistributionPointsExtension(['http://attacker.example/crl']),
      ],
    });
    const spiffeId = parseSpiffeId('spiffe://acme.rampart.local/ns/pay/sa/api').id;
    const { certificate } = await signSvidFromCsr(issuer, { tenant: 'acme', spiffeId, csrPem: csr.pem, ttlMs: 3_600_000, clock, advertiseAddr: 'https://rampart.example' });
    const shape = svidShape(certificate.toString('pem'));
    expect({ ca: shape.ca, uris: shape.uris, others: shape.otherNames, subject: shape.subject }).toEqual({ ca: false, uris: [spiffeId], others: [], subject: '' });
    expect(shape.keyUsage).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(shape.eku).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    expect(shape.crlUrls).toEqual([`https://rampart.example/v1/pki/issuers/${issuerKeyId(issuer)}/crl`]);
    // Exactly the CA's extensions, each once: BC, KU, EKU, SAN, CRL DP, AIA, SKI, AKI.
    expect(certificate.extensions.map((e) => e.type).sort()).toEqual(
      ['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.31', '1.3.6.1.5.5.7.1.1', '2.5.29.14', '2.5.29.35'].sort(),
    );
    // And it cannot sign: a certificate "issued" by it does not chain for any verifier that checks cA.
    expect(certificate.getExtension(x509.BasicConstraintsExtension)?.critical).toBe(true);
  });
});
