import { type CipherGCMTypes, createDecipheriv, hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decrypt, encrypt, generateDataKey, rewrap } from '../../../src/secrets/transit/encryption.js';
import type { OpenKey } from '../../../src/secrets/transit/open-key.js';
import { codeOf, transitFixture } from './transit-fixture.js';

const SYMMETRIC = ['aes256-gcm96', 'chacha20-poly1305'] as const;

describe('transit encryption', () => {
  const t = transitFixture();

  /** A key of `type` rotated to `versions` versions, with min_decryption_version `min`. */
  async function keyWith(type: (typeof SYMMETRIC)[number], versions: number, min = 1, derived = false): Promise<OpenKey> {
    const key = await t.fresh({ type, derived });
    for (let v = 1; v < versions; v++) await t.keys().rotate(key.ref);
    if (min > 1) await t.keys().configure(key.ref, { minDecryptionVersion: min });
    return t.reopen(key);
  }

  for (const type of SYMMETRIC) {
    describe(type, () => {
      it('decrypt(encrypt(x)) = x for every plaintext and every version at or above min_decryption_version', async () => {
        const key = await keyWith(type, 4, 2);
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), fc.integer({ min: 2, max: 4 }), async (bytes, version) => {
            const plaintext = Buffer.from(bytes);
            const sealed = await encrypt(key, { plaintext, keyVersion: version });
            expect(sealed.ciphertext.startsWith(`vault:v${version}:`)).toBe(true);
            const opened = await decrypt(key, { ciphertext: sealed.ciphertext });
            expect(opened.plaintext.equals(plaintext)).toBe(true);
            expect(opened.keyVersion).toBe(version);
          }),
          { numRuns: 60 },
        );
      });

      it('writes Vault\'s layout: base64(96-bit nonce ‖ ciphertext ‖ 128-bit tag) that node:crypto opens with the version key', async () => {
        const key = await keyWith(type, 1);
        const plaintext = Buffer.from('the quick brown fox');
        const { ciphertext } = await encrypt(key, { plaintext });
        const raw = Buffer.from(ciphertext.slice('vault:v1:'.length), 'base64');
        expect(raw.length).toBe(12 + plaintext.length + 16);
        const { key: secret } = await key.material(1);
        const decipher = createDecipheriv((type === 'aes256-gcm96' ? 'aes-256-gcm' : 'chacha20-poly1305') as CipherGCMTypes, secret, raw.subarray(0, 12), {
          authTagLength: 16,
        });
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        expect(Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()])).toEqual(plaintext);
      });

      it('uses a fresh nonce: the same plaintext never encrypts to the same ciphertext', async () => {
        const key = await keyWith(type, 1);
        const seen = new Set<string>();
        for (let i = 0; i < 50; i++) seen.add((await encrypt(key, { plaintext: Buffer.from('same') })).ciphertext);
        expect(seen.size).toBe(50);
      });

      it('rewrap moves a ciphertext to the latest version and preserves the plaintext', async () => {
        const key = await keyWith(type, 1);
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (bytes) => {
            const plaintext = Buffer.from(bytes);
            const old = await encrypt(key, { plaintext });
            const moved = await rewrap(key, { ciphertext: old.ciphertext });
            expect(moved.keyVersion).toBe(key.record.latestVersion);
            expect((await decrypt(key, { ciphertext: moved.ciphertext })).plaintext.equals(plaintext)).toBe(true);
          }),
          { numRuns: 30 },
        );
        await t.keys().rotate(key.ref);
        await t.keys().rotate(key.ref);
        const rotated = await t.reopen(key);
        const v1 = await encrypt(key, { plaintext: Buffer.from('rotate me') });
        const v3 = await rewrap(rotated, { ciphertext: v1.ciphertext });
        expect(v3.ciphertext.startsWith('vault:v3:')).toBe(true);
        // Once min_decryption_version passes v1, only the rewrapped ciphertext still opens.
        await t.keys().configure(key.ref, { minDecryptionVersion: 3 });
        const raised = await t.reopen(key);
        expect((await decrypt(raised, { ciphertext: v3.ciphertext })).plaintext.toString()).toBe('rotate me');
        expect(await codeOf(() => decrypt(raised, { ciphertext: v1.ciphertext }))).toBe('transit.version_disallowed');
      });

      it('fails to decrypt any ciphertext with a single bit flipped, with the one generic error', async () => {
        const key = await keyWith(type, 1);
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.integer({ min: 0, max: 7 }), async (bytes, at, bit) => {
            const { ciphertext } = await encrypt(key, { plaintext: Buffer.from(bytes) });
            const raw = Buffer.from(ciphertext, 'latin1');
            raw[at % raw.length]! ^= 1 << bit;
            const err = await decrypt(key, { ciphertext: raw.toString('latin1') }).then(
              () => undefined,
              (e: unknown) => e as { code: string; message: string },
            );
            expect(err?.code).toBe('transit.decrypt_failed');
            expect(err?.message).toBe('invalid ciphertext: unable to decrypt');
          }),
          { numRuns: 300 },
        );
      });
    });
  }

  it('answers every kind of tampering with the same code and message (no oracle)', async () => {
    const key = await keyWith('aes256-gcm96', 2);
    const { ciphertext } = await encrypt(key, { plaintext: Buffer.from('secret') });
    const body = ciphertext.slice('vault:v2:'.length);
    const raw = Buffer.from(body, 'base64');
    const badTag = Buffer.from(raw);
    badTag[badTag.length - 1]! ^= 0x80;
    const cases = [
      `vault:v2:${badTag.toString('base64')}`, // bad tag
      `vault:v9:${body}`, // a version the key never had
      `vault:v2:${body.slice(0, -2)}!!`, // bad base64 after the prefix
      `vault:v2:${body.replace(/=+$/, '')}`, // unpadded
      `vault:v2:${raw.subarray(0, 20).toString('base64')}`, // truncated
      `vault:v2:`, // empty body
      `vault:v0:${body}`,
      `vault:2:${body}`, // no "v"
      `nope:v2:${body}`,
      body,
      '',
    ];
    const errors = await Promise.all(cases.map((c) => decrypt(key, { ciphertext: c }).then(() => undefined, (e: unknown) => e as Error & { code: string })));
    for (const [i, err] of errors.entries()) {
      expect(err?.code, cases[i]).toBe('transit.decrypt_failed');
      expect(err?.message, cases[i]).toBe('invalid ciphertext: unable to decrypt');
    }
  });

  it('authenticates associated_data: the same bytes open, any other (or none) is the generic failure', async () => {
    for (const type of SYMMETRIC) {
      const key = await keyWith(type, 1);
      const associatedData = Buffer.from('row 17 of table payments');
      const { ciphertext } = await encrypt(key, { plaintext: Buffer.from('amount=100'), associatedData });
      expect((await decrypt(key, { ciphertext, associatedData })).plaintext.toString()).toBe('amount=100');
      expect(await codeOf(() => decrypt(key, { ciphertext, associatedData: Buffer.from('row 18 of table payments') }))).toBe('transit.decrypt_failed');
      expect(await codeOf(() => decrypt(key, { ciphertext }))).toBe('transit.decrypt_failed');
      const moved = await rewrap(key, { ciphertext, associatedData });
      expect((await decrypt(key, { ciphertext: moved.ciphertext, associatedData })).plaintext.toString()).toBe('amount=100');
    }
  });

  it('does not open a ciphertext under another key of the same type', async () => {
    const a = await keyWith('aes256-gcm96', 1);
    const b = await keyWith('aes256-gcm96', 1);
    const { ciphertext } = await encrypt(a, { plaintext: Buffer.from('for a only') });
    expect(await codeOf(() => decrypt(b, { ciphertext }))).toBe('transit.decrypt_failed');
  });

  it('refuses versions below min_decryption_version, and key_version below min_encryption_version', async () => {
    const key = await keyWith('chacha20-poly1305', 3);
    const v1 = await encrypt(key, { plaintext: Buffer.from('old'), keyVersion: 1 });
    await t.keys().configure(key.ref, { minDecryptionVersion: 2, minEncryptionVersion: 3 });
    const raised = await t.reopen(key);
    expect(await codeOf(() => decrypt(raised, { ciphertext: v1.ciphertext }))).toBe('transit.version_disallowed');
    expect(await codeOf(() => encrypt(raised, { plaintext: Buffer.from('x'), keyVersion: 2 }))).toBe('transit.version_disallowed');
    expect(await codeOf(() => encrypt(raised, { plaintext: Buffer.from('x'), keyVersion: 4 }))).toBe('transit.invalid_request');
    expect((await encrypt(raised, { plaintext: Buffer.from('x') })).keyVersion).toBe(3);
  });

  describe('derived keys', () => {
    it('derive the key per context with HKDF-SHA256 (no salt, context as info), as Vault\'s hkdf_sha256', async () => {
      const key = await keyWith('aes256-gcm96', 1, 1, true);
      const context = Buffer.from('user-42');
      const { ciphertext } = await encrypt(key, { plaintext: Buffer.from('per-user data'), context });
      const raw = Buffer.from(ciphertext.slice('vault:v1:'.length), 'base64');
      const derived = Buffer.from(hkdfSync('sha256', (await key.material(1)).key, Buffer.alloc(0), context, 32));
      const decipher = createDecipheriv('aes-256-gcm', derived, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      expect(Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString()).toBe('per-user data');
    });

    it('open only under the same context; a missing context is its own error', async () => {
      const key = await keyWith('chacha20-poly1305', 1, 1, true);
      const { ciphertext } = await encrypt(key, { plaintext: Buffer.from('tenant data'), context: Buffer.from('alice') });
      expect((await decrypt(key, { ciphertext, context: Buffer.from('alice') })).plaintext.toString()).toBe('tenant data');
      expect(await codeOf(() => decrypt(key, { ciphertext, context: Buffer.from('mallory') }))).toBe('transit.decrypt_failed');
      expect(await codeOf(() => decrypt(key, { ciphertext }))).toBe('transit.context_required');
      expect(await codeOf(() => encrypt(key, { plaintext: Buffer.from('x') }))).toBe('transit.context_required');
      expect(await codeOf(() => encrypt(key, { plaintext: Buffer.from('x'), context: Buffer.alloc(0) }))).toBe('transit.context_required');
    });

    it('are refused for signing key types', async () => {
      expect(await codeOf(() => t.fresh({ type: 'ed25519', derived: true }))).toBe('transit.unsupported_operation');
    });
  });

  it('refuses to encrypt with a signing key', async () => {
    const key = await t.fresh({ type: 'ecdsa-p256' });
    expect(await codeOf(() => encrypt(key, { plaintext: Buffer.from('x') }))).toBe('transit.unsupported_operation');
    expect(await codeOf(() => decrypt(key, { ciphertext: 'vault:v1:AAAA' }))).toBe('transit.unsupported_operation');
  });

  it('generates data keys of 128, 256 and 512 bits that decrypt to the returned plaintext', async () => {
    const key = await keyWith('aes256-gcm96', 1);
    for (const bits of [128, 256, 512]) {
      const dk = await generateDataKey(key, { bits });
      expect(dk.plaintext.length).toBe(bits / 8);
      expect((await decrypt(key, { ciphertext: dk.ciphertext })).plaintext.equals(dk.plaintext)).toBe(true);
    }
    expect(await codeOf(() => generateDataKey(key, { bits: 64 }))).toBe('transit.invalid_request');
  });
});
