import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from '../../src/pki/ca.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { readSvidRequest } from '../../src/pki/svid-request.js';
import { signSvidFromCsr } from '../../src/pki/svid-signing.js';
import { makeCsr, svidShape } from '../support/pki.js';
import { BASIC_CONSTRAINTS, EXTENDED_KEY_USAGE, ekuValue, extension, extensionRequest, KEY_USAGE, keyUsageBits, rawCsr, SUBJECT_ALT_NAME, sanValue, URI } from './csr-raw.js';

/**
 * Security regression: a CSR that asks to be a CA is refused with `pki.csr_requests_ca`, in
 * every spelling (basicConstraints cA=TRUE critical or not, BER TRUE other than 0xff, keyUsage
 * keyCertSign or cRLSign alone, Microsoft's extension-request attribute), and issues nothing.
 * The leaf's extensions were never copied from the request; refusing makes the attempt visible.
 */
describe('a CSR that requests CA powers', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const spiffeId = parseSpiffeId('spiffe://acme.rampart.local/ns/pay/sa/api').id;
  let issuer: CertificateAuthority;
  beforeAll(async () => {
    const root = await createRootCa({ commonName: 'Test Root', clock });
    issuer = await createIntermediateCa(root, { commonName: 'Test Intermediate', clock });
  });
  const sign = (csrPem: string) => signSvidFromCsr(issuer, { tenant: 'acme', spiffeId, csrPem, ttlMs: 3_600_000, clock, advertiseAddr: 'https://rampart.example' });

  it.each<[string, x509.Extension[]]>([
    ['cA=TRUE, critical, with a path length', [new x509.BasicConstraintsExtension(true, 5, true)]],
    ['cA=TRUE, not critical', [new x509.BasicConstraintsExtension(true)]],
    ['keyCertSign alone', [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true)]],
    ['cRLSign alone', [new x509.KeyUsagesExtension(x509.KeyUsageFlags.cRLSign)]],
    [
      'everything at once, next to a matching URI SAN',
      [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
      ],
    ],
  ])('%s: refused with pki.csr_requests_ca', async (_name, extensions) => {
    const csr = await makeCsr({ subject: 'CN=Evil Intermediate, O=Attacker', extensions });
    await expect(sign(csr.pem)).rejects.toMatchObject({ code: 'pki.csr_requests_ca' });
    await expect(readSvidRequest(csr.pem)).rejects.toMatchObject({ code: 'pki.csr_requests_ca' });
  });

  it('names what was asked for in the error details', async () => {
    const csr = await makeCsr({ extensions: [new x509.BasicConstraintsExtension(true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.cRLSign)] });
    await expect(sign(csr.pem)).rejects.toMatchObject({ code: 'pki.csr_requests_ca', details: { requested: ['cA=TRUE', 'cRLSign'] } });
  });

  it('reads a BER TRUE that is not 0xff as TRUE, and the Microsoft extension-request attribute too', async () => {
    const berTrue = extension(BASIC_CONSTRAINTS, true, Buffer.from([0x30, 0x03, 0x01, 0x01, 0x01]));
    await expect(sign(rawCsr([extensionRequest([berTrue])]))).rejects.toMatchObject({ code: 'pki.csr_requests_ca' });
    const ms = extensionRequest([extension(KEY_USAGE, true, keyUsageBits([5]))], '1.3.6.1.4.1.311.2.1.14');
    await expect(sign(rawCsr([ms]))).rejects.toMatchObject({ code: 'pki.csr_requests_ca' });
  });

  it('issues a leaf to the same request without the CA bits, copying none of its other extensions', async () => {
    const csr = await makeCsr({
      subject: 'CN=Evil Intermediate, O=Attacker',
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.3'], true), // codeSigning
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
        new x509.CRLDistributionPointsExtension(['http://attacker.example/crl']),
      ],
    });
    const { certificate } = await sign(csr.pem);
    const shape = svidShape(certificate.toString('pem'));
    expect({ ca: shape.ca, uris: shape.uris, others: shape.otherNames, subject: shape.subject }).toEqual({ ca: false, uris: [spiffeId], others: [], subject: '' });
    expect(shape.keyUsage).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(shape.eku).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    expect(shape.crlUrls).toEqual([expect.stringMatching(/^https:\/\/rampart\.example\/v1\/pki\/issuers\/[0-9a-f]+\/crl$/)]);
    // Exactly the CA's extensions, each once: BC, KU, EKU, SAN, CRL DP, AIA, SKI, AKI.
    expect(certificate.extensions.map((e) => e.type).sort()).toEqual(
      ['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.31', '1.3.6.1.5.5.7.1.1', '2.5.29.14', '2.5.29.35'].sort(),
    );
  });

  // Any request without CA bits is issued a leaf; the same request with any one CA bit added is
  // refused. Requests are written byte by byte so that every encoding the reader accepts occurs:
  // basicConstraints absent, empty or with an explicit FALSE, any non-CA key usage, EKUs, a
  // matching URI SAN, unknown extensions, each critical or not, in any order.
  it('property: random CSRs without CA bits are issued; adding any CA bit refuses them', async () => {
    const critical = fc.boolean();
    const basicConstraints = fc.oneof(
      fc.constant(Buffer.from([0x30, 0x00])),
      fc.constant(Buffer.from([0x30, 0x03, 0x01, 0x01, 0x00])),
      fc.integer({ min: 0, max: 9 }).map((n) => Buffer.from([0x30, 0x03, 0x02, 0x01, n])),
    );
    const nonCaUsage = fc.subarray([0, 1, 2, 3, 4, 7, 8]);
    const eku = fc.subarray(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.4'], { minLength: 1 });
    const unknown = fc.tuple(fc.integer({ min: 1, max: 1_000_000 }), fc.uint8Array({ maxLength: 40 }));
    const request = fc.record({
      bc: fc.option(fc.tuple(critical, basicConstraints), { nil: undefined }),
      ku: fc.option(fc.tuple(critical, nonCaUsage), { nil: undefined }),
      eku: fc.option(fc.tuple(critical, eku), { nil: undefined }),
      san: fc.option(critical, { nil: undefined }),
      unknown: fc.array(fc.tuple(critical, unknown), { maxLength: 3 }),
      caBit: fc.constantFrom<'cA' | 5 | 6>('cA', 5, 6),
      order: fc.nat(),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const build = (withCa: boolean): string => {
          const exts: Buffer[] = [];
          const bcValue = withCa && r.caBit === 'cA' ? Buffer.from([0x30, 0x03, 0x01, 0x01, 0xff]) : r.bc?.[1];
          if (bcValue !== undefined) exts.push(extension(BASIC_CONSTRAINTS, r.bc?.[0] ?? true, bcValue));
          const bits = [...(r.ku?.[1] ?? []), ...(withCa && r.caBit !== 'cA' ? [r.caBit] : [])];
          if (r.ku !== undefined || bits.length > 0) exts.push(extension(KEY_USAGE, r.ku?.[0] ?? true, keyUsageBits(bits)));
          if (r.eku) exts.push(extension(EXTENDED_KEY_USAGE, r.eku[0], ekuValue(r.eku[1])));
          if (r.san !== undefined) exts.push(extension(SUBJECT_ALT_NAME, r.san, sanValue([[URI, spiffeId]])));
          // Distinct OIDs: a request naming one extension twice is malformed (csr-names.test.ts).
          for (const [i, [crit, [arc, bytes]]] of r.unknown.entries()) exts.push(extension(`1.3.6.1.4.1.99999.${i}.${arc}`, crit, Buffer.concat([Buffer.from([0x04, bytes.length]), bytes])));
          const rotated = exts.length === 0 ? exts : [...exts.slice(r.order % exts.length), ...exts.slice(0, r.order % exts.length)];
          return rawCsr(rotated.length === 0 ? [] : [extensionRequest(rotated)]);
        };
        const { certificate } = await sign(build(false));
        const shape = svidShape(certificate.toString('pem'));
        expect({ ca: shape.ca, uris: shape.uris, ku: shape.keyUsage }).toEqual({ ca: false, uris: [spiffeId], ku: x509.KeyUsageFlags.digitalSignature });
        await expect(sign(build(true))).rejects.toMatchObject({ code: 'pki.csr_requests_ca' });
      }),
      { numRuns: 150 },
    );
  });
});
