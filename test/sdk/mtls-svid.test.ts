import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, chainPem, createIntermediateCa, createRootCa, issueSvid } from '../../src/pki/ca.js';
import { generateKeyPair, signingAlgorithmFor } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { spiffeIdOf, SvidError, verifySvid } from '../../src/sdk/index.js';

/**
 * verifySvid and spiffeIdOf on their own, with the validation time injected: the X509-SVID §5
 * rules, and the attacks they exist for (a CA certificate or a foreign chain presented as an
 * SVID, a leaf that may sign certificates, two identities in one certificate).
 */

const HOUR = 3_600_000;
const ID = parseSpiffeId('spiffe://acme.rampart.local/ns/pay/sa/api').id;

describe('verifySvid', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let root: CertificateAuthority;
  let intermediate: CertificateAuthority;
  let foreign: CertificateAuthority;
  let leaf: x509.X509Certificate;

  beforeAll(async () => {
    root = await createRootCa({ commonName: 'Root', clock });
    intermediate = await createIntermediateCa(root, { commonName: 'Intermediate', clock });
    foreign = await createRootCa({ commonName: 'Root', clock }); // same name, other key
    leaf = await issueSvid(intermediate, { publicKey: (await generateKeyPair()).publicKey, spiffeId: ID, clock, ttlMs: HOUR });
  });

  const expectCode = async (p: Promise<unknown>, code: SvidError['code']) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SvidError);
    expect((err as SvidError).code).toBe(code);
  };

  it('accepts a leaf → intermediate chain against a root bundle, and a leaf alone against a bundle holding the intermediate', async () => {
    const verified = await verifySvid(chainPem(leaf, intermediate.certificate), chainPem(root.certificate), { at: clock.now() });
    expect(verified.spiffeId).toBe(ID);
    expect(verified.trustDomain).toBe('acme.rampart.local');
    expect(verified.path.map((c) => c.subject)).toEqual(['', 'CN=Intermediate', 'CN=Root']);
    expect((await verifySvid([leaf], [root.certificate, intermediate.certificate], { at: clock.now() })).spiffeId).toBe(ID);
    expect(spiffeIdOf(new Uint8Array(leaf.rawData))).toBe(ID);
    expect(spiffeIdOf(leaf.toString('pem'))).toBe(ID);
  });

  it('refuses a chain that ends at a root with the same name but another key', async () => {
    await expectCode(verifySvid(chainPem(leaf, intermediate.certificate), chainPem(foreign.certificate), { at: clock.now() }), 'svid.untrusted');
  });

  it('refuses outside the validity window of the injected time, never the system time', async () => {
    await expectCode(verifySvid([leaf, intermediate.certificate], [root.certificate], { at: new Date(clock.now().getTime() + 2 * HOUR) }), 'svid.expired');
    await expectCode(verifySvid([leaf, intermediate.certificate], [root.certificate], { at: new Date(clock.now().getTime() - 2 * HOUR) }), 'svid.not_yet_valid');
  });

  it('applies the allow-list and the callback', async () => {
    const chain = [leaf, intermediate.certificate];
    await expectCode(verifySvid(chain, [root.certificate], { at: clock.now(), authorize: ['spiffe://acme.rampart.local/ns/other'] }), 'svid.forbidden');
    await expectCode(verifySvid(chain, [root.certificate], { at: clock.now(), authorize: () => false }), 'svid.forbidden');
    expect((await verifySvid(chain, [root.certificate], { at: clock.now(), authorize: [ID] })).spiffeId).toBe(ID);
  });

  it('security regression: refuses a CA certificate presented as an SVID', async () => {
    await expectCode(verifySvid([intermediate.certificate], [root.certificate], { at: clock.now() }), 'svid.malformed'); // no URI SAN at all
  });

  async function craftedLeaf(extensions: x509.Extension[]): Promise<x509.X509Certificate> {
    const keys = await generateKeyPair();
    return x509.X509CertificateGenerator.create({
      serialNumber: '01',
      issuer: intermediate.certificate.subjectName,
      notBefore: new Date(clock.now().getTime() - HOUR),
      notAfter: new Date(clock.now().getTime() + HOUR),
      publicKey: keys.publicKey,
      signingKey: intermediate.privateKey,
      signingAlgorithm: signingAlgorithmFor(intermediate.algorithm),
      extensions,
    });
  }

  it('security regression: refuses a leaf allowed to sign certificates, a leaf marked CA, and one with two SPIFFE IDs', async () => {
    const san = new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID }], true);
    const signer = await craftedLeaf([san, new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true)]);
    await expectCode(verifySvid([signer, intermediate.certificate], [root.certificate], { at: clock.now() }), 'svid.key_usage');
    const ca = await craftedLeaf([new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://acme.rampart.local' }], true), new x509.BasicConstraintsExtension(true, undefined, true)]);
    await expectCode(verifySvid([ca, intermediate.certificate], [root.certificate], { at: clock.now() }), 'svid.not_leaf');
    const twoIds = await craftedLeaf([new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID }, { type: 'url', value: 'spiffe://acme.rampart.local/admin' }], true)]);
    await expectCode(verifySvid([twoIds, intermediate.certificate], [root.certificate], { at: clock.now() }), 'svid.malformed');
  });

  it('refuses garbage input with svid.malformed', async () => {
    await expectCode(verifySvid('not pem', [root.certificate]), 'svid.malformed');
    await expectCode(verifySvid([], [root.certificate]), 'svid.malformed');
    expect(() => spiffeIdOf(new Uint8Array([1, 2, 3]))).toThrow(SvidError);
  });
});
