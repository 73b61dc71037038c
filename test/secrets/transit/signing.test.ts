import { constants, createHash, createPublicKey, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeKey } from '../../../src/secrets/transit/key-description.js';
import type { OpenKey } from '../../../src/secrets/transit/open-key.js';
import { signInput, verifySignature } from '../../../src/secrets/transit/signing.js';
import { codeOf, transitFixture } from './transit-fixture.js';

describe('transit signing', () => {
  const t = transitFixture();

  /** The version's public key exactly as the key read hands it out. */
  async function publicKeyOf(key: OpenKey, version = 1) {
    const { key: record, versions } = await t.keys().read(key.ref);
    const entry = (describeKey(record, versions).keys as Record<string, { public_key: string }>)[String(version)]!;
    if (record.type === 'ed25519') {
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(entry.public_key, 'base64').toString('base64url') }, format: 'jwk' });
    }
    return createPublicKey(entry.public_key);
  }

  const payloadOf = (signature: string) => signature.replace(/^vault:v\d+:/, '');

  for (const type of ['ed25519', 'ecdsa-p256', 'rsa-2048'] as const) {
    it(`${type}: verify(sign(x)) holds for every input and every version at or above min_decryption_version`, async () => {
      const key = await t.fresh({ type });
      await t.keys().rotate(key.ref);
      await t.keys().rotate(key.ref);
      await t.keys().configure(key.ref, { minDecryptionVersion: 2 });
      const rotated = await t.reopen(key);
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), fc.integer({ min: 2, max: 3 }), fc.constantFrom('asn1', 'jws'), async (bytes, version, marshaling) => {
          const input = Buffer.from(bytes);
          const { signature, keyVersion } = await signInput(rotated, { input, keyVersion: version, marshalingAlgorithm: marshaling });
          expect(keyVersion).toBe(version);
          expect(signature.startsWith(`vault:v${version}:`)).toBe(true);
          expect(await verifySignature(rotated, { input, signature, marshalingAlgorithm: marshaling })).toBe(true);
        }),
        { numRuns: 20 },
      );
    });
  }

  it('ed25519: signs the message (hash_algorithm ignored) and verifies with the published raw public key', async () => {
    const key = await t.fresh({ type: 'ed25519' });
    const pub = await publicKeyOf(key);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (bytes) => {
        const input = Buffer.from(bytes);
        const { signature } = await signInput(key, { input, hashAlgorithm: 'sha2-512' });
        expect(verify(null, input, pub, Buffer.from(payloadOf(signature), 'base64'))).toBe(true);
        expect(await verifySignature(key, { input, signature })).toBe(true);
        expect(await verifySignature(key, { input: Buffer.concat([input, Buffer.from([0])]), signature })).toBe(false);
      }),
      { numRuns: 25 },
    );
  });

  it('ecdsa-p256: asn1 (DER, base64) and jws (r‖s, base64url) signatures verify independently', async () => {
    const key = await t.fresh({ type: 'ecdsa-p256' });
    const pub = await publicKeyOf(key);
    const input = Buffer.from('sign me');
    for (const hash of [['sha2-256', 'sha256'], ['sha2-384', 'sha384'], ['sha3-256', 'sha3-256']] as const) {
      const der = await signInput(key, { input, hashAlgorithm: hash[0] });
      expect(verify(hash[1], input, { key: pub, dsaEncoding: 'der' }, Buffer.from(payloadOf(der.signature), 'base64'))).toBe(true);
      expect(await verifySignature(key, { input, signature: der.signature, hashAlgorithm: hash[0] })).toBe(true);
      // The same signature under another hash does not verify.
      expect(await verifySignature(key, { input, signature: der.signature, hashAlgorithm: 'sha2-512' })).toBe(false);

      const jws = await signInput(key, { input, hashAlgorithm: hash[0], marshalingAlgorithm: 'jws' });
      const raw = Buffer.from(payloadOf(jws.signature), 'base64url');
      expect(payloadOf(jws.signature)).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(raw.length).toBe(64);
      expect(verify(hash[1], input, { key: pub, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
      expect(await verifySignature(key, { input, signature: jws.signature, hashAlgorithm: hash[0], marshalingAlgorithm: 'jws' })).toBe(true);
      // Marshaling must match.
      expect(await verifySignature(key, { input, signature: jws.signature, hashAlgorithm: hash[0] })).toBe(false);
    }
  });

  it('rsa-2048: pss (default) and pkcs1v15 signatures verify independently', async () => {
    const key = await t.fresh({ type: 'rsa-2048' });
    const pub = await publicKeyOf(key);
    const input = Buffer.from('rsa input');
    const pss = await signInput(key, { input });
    expect(
      verify('sha256', input, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, Buffer.from(payloadOf(pss.signature), 'base64')),
    ).toBe(true);
    expect(await verifySignature(key, { input, signature: pss.signature })).toBe(true);
    expect(await verifySignature(key, { input, signature: pss.signature, signatureAlgorithm: 'pkcs1v15' })).toBe(false);

    const v15 = await signInput(key, { input, signatureAlgorithm: 'pkcs1v15', hashAlgorithm: 'sha2-512' });
    expect(verify('sha512', input, pub, Buffer.from(payloadOf(v15.signature), 'base64'))).toBe(true);
    expect(await verifySignature(key, { input, signature: v15.signature, signatureAlgorithm: 'pkcs1v15', hashAlgorithm: 'sha2-512' })).toBe(true);
  });

  it('rsa-2048 pkcs1v15 signs a prehashed digest: the result equals signing the message', async () => {
    const key = await t.fresh({ type: 'rsa-2048' });
    const message = Buffer.from('the message itself');
    const digest = createHash('sha256').update(message).digest();
    const pre = await signInput(key, { input: digest, prehashed: true, signatureAlgorithm: 'pkcs1v15' });
    const direct = await signInput(key, { input: message, signatureAlgorithm: 'pkcs1v15' });
    // PKCS#1 v1.5 is deterministic, so the two must be byte-identical.
    expect(pre.signature).toBe(direct.signature);
    expect(await verifySignature(key, { input: digest, prehashed: true, signatureAlgorithm: 'pkcs1v15', signature: pre.signature })).toBe(true);
    expect(await verifySignature(key, { input: message, signatureAlgorithm: 'pkcs1v15', signature: pre.signature })).toBe(true);
    expect(await codeOf(() => signInput(key, { input: digest.subarray(1), prehashed: true, signatureAlgorithm: 'pkcs1v15' }))).toBe('transit.invalid_request');
    expect(await codeOf(() => signInput(key, { input: digest, prehashed: true }))).toBe('transit.unsupported_operation');
    const ec = await t.fresh({ type: 'ecdsa-p256' });
    expect(await codeOf(() => signInput(ec, { input: digest, prehashed: true }))).toBe('transit.unsupported_operation');
  });

  it('signs with the requested version; refuses versions below the minimums and unknown algorithms', async () => {
    const key = await t.fresh({ type: 'ed25519' });
    await t.keys().rotate(key.ref);
    const rotated = await t.reopen(key);
    const input = Buffer.from('versioned');
    const v1 = await signInput(rotated, { input, keyVersion: 1 });
    const v2 = await signInput(rotated, { input });
    expect(v1.signature.startsWith('vault:v1:')).toBe(true);
    expect(v2.signature.startsWith('vault:v2:')).toBe(true);
    expect(verify(null, input, await publicKeyOf(rotated, 2), Buffer.from(payloadOf(v2.signature), 'base64'))).toBe(true);
    // A v2 signature relabelled as v1 does not verify.
    expect(await verifySignature(rotated, { input, signature: v2.signature.replace('vault:v2:', 'vault:v1:') })).toBe(false);
    expect(await verifySignature(rotated, { input, signature: v2.signature.replace('vault:v2:', 'vault:v7:') })).toBe(false);
    await t.keys().configure(key.ref, { minDecryptionVersion: 2 });
    const raised = await t.reopen(key);
    expect(await codeOf(() => verifySignature(raised, { input, signature: v1.signature }))).toBe('transit.version_disallowed');
    expect(await codeOf(() => verifySignature(raised, { input, signature: 'garbage' }))).toBe('transit.invalid_request');
    expect(await verifySignature(raised, { input, signature: 'vault:v2:!!!' })).toBe(false);

    const ec = await t.fresh({ type: 'ecdsa-p256' });
    expect(await codeOf(() => signInput(ec, { input, hashAlgorithm: 'md5' }))).toBe('transit.invalid_request');
    expect(await codeOf(() => signInput(ec, { input, marshalingAlgorithm: 'pem' }))).toBe('transit.invalid_request');
    const aes = await t.fresh({ type: 'aes256-gcm96' });
    expect(await codeOf(() => signInput(aes, { input }))).toBe('transit.unsupported_operation');
  });
});
