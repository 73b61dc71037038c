import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashInput } from '../../../src/secrets/transit/hash.js';
import { computeHmac, verifyHmac } from '../../../src/secrets/transit/hmac.js';
import { generateRandom } from '../../../src/secrets/transit/random.js';
import { codeOf, transitFixture } from './transit-fixture.js';

describe('transit hmac', () => {
  const t = transitFixture();

  it('is HMAC under the version\'s own HMAC key, not the encryption key, and verifies', async () => {
    const key = await t.fresh();
    const input = Buffer.from('message');
    const { hmac, keyVersion } = await computeHmac(key, { input, algorithm: 'sha2-384' });
    expect(keyVersion).toBe(1);
    const material = await key.material(1);
    expect(hmac).toBe(`vault:v1:${createHmac('sha384', material.hmacKey).update(input).digest('base64')}`);
    expect(hmac).not.toBe(`vault:v1:${createHmac('sha384', material.key).update(input).digest('base64')}`);
    expect(await verifyHmac(key, { input, hmac, algorithm: 'sha2-384' })).toBe(true);
    expect(await verifyHmac(key, { input, hmac })).toBe(false);
  });

  it('rejects any changed input or any single flipped bit of the HMAC', async () => {
    const key = await t.fresh({ type: 'ecdsa-p256' });
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.integer({ min: 0, max: 7 }), async (bytes, at, bit) => {
        const input = Buffer.from(bytes);
        const { hmac } = await computeHmac(key, { input });
        const raw = Buffer.from(hmac, 'latin1');
        raw[at % raw.length]! ^= 1 << bit;
        const result = await verifyHmac(key, { input, hmac: raw.toString('latin1') }).catch((e: { code: string }) => e.code);
        expect([false, 'transit.invalid_request']).toContain(result);
        expect(await verifyHmac(key, { input: Buffer.concat([input, Buffer.from('x')]), hmac })).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('honours key versions and min_decryption_version', async () => {
    const key = await t.fresh();
    await t.keys().rotate(key.ref);
    const rotated = await t.reopen(key);
    const input = Buffer.from('v');
    const v1 = await computeHmac(rotated, { input, keyVersion: 1 });
    expect(await verifyHmac(rotated, { input, hmac: v1.hmac })).toBe(true);
    expect(await verifyHmac(rotated, { input, hmac: v1.hmac.replace('vault:v1:', 'vault:v2:') })).toBe(false);
    await t.keys().configure(key.ref, { minDecryptionVersion: 2 });
    expect(await codeOf(async () => verifyHmac(await t.reopen(key), { input, hmac: v1.hmac }))).toBe('transit.version_disallowed');
  });
});

describe('transit random and hash', () => {
  it('returns the requested number of random bytes in base64 or hex', () => {
    expect(Buffer.from(generateRandom(undefined, undefined), 'base64')).toHaveLength(32);
    expect(generateRandom(16, 'hex')).toMatch(/^[0-9a-f]{32}$/);
    expect(generateRandom(16, 'hex')).not.toBe(generateRandom(16, 'hex'));
    for (const bad of [0, -1, 1.5, 128 * 1024 + 1]) expect(() => generateRandom(bad, undefined)).toThrow(/bytes must be/);
    expect(() => generateRandom(8, 'binary')).toThrow(/format/);
  });

  it('hashes like node:crypto, hex by default', () => {
    const input = Buffer.from('hash me');
    expect(hashInput(input, undefined, undefined)).toBe(createHash('sha256').update(input).digest('hex'));
    expect(hashInput(input, 'sha2-512', 'base64')).toBe(createHash('sha512').update(input).digest('base64'));
    expect(hashInput(input, 'sha3-256', 'hex')).toBe(createHash('sha3-256').update(input).digest('hex'));
    expect(() => hashInput(input, 'md5', undefined)).toThrow(/unsupported hash algorithm/);
  });
});
