import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decrypt, encrypt } from '../../../src/secrets/transit/encryption.js';
import { sealMaterial } from '../../../src/secrets/transit/material.js';
import { codeOf, transitFixture } from './transit-fixture.js';

interface Vector {
  readonly name: string;
  readonly type: 'aes256-gcm96';
  readonly derived: boolean;
  readonly key: string;
  readonly context: string | null;
  readonly ciphertext: string;
  readonly plaintext: string;
}

/** Ciphertexts made by HashiCorp Vault itself; origin in test/vectors/vault-transit/README.md. */
const VECTORS = JSON.parse(readFileSync(new URL('../../vectors/vault-transit/ciphertexts.json', import.meta.url), 'utf8')) as Vector[];

describe('ciphertexts made by HashiCorp Vault', () => {
  const t = transitFixture();

  for (const [i, v] of VECTORS.entries()) {
    it(`decrypts ${v.name}`, async () => {
      const store = t.store();
      const ref = { tenant: 'acme', mount: 'vault_vectors', name: `vector-${i}` };
      const at = t.clock.now().toISOString();
      const sealedMaterial = sealMaterial(t.barrier, ref, 1, { key: Buffer.from(v.key, 'base64'), hmacKey: randomBytes(32) });
      await store.create(
        { ...ref, type: v.type, derived: v.derived, exportable: false, allowPlaintextBackup: false, deletionAllowed: false, latestVersion: 1, minDecryptionVersion: 1, minEncryptionVersion: 0, minAvailableVersion: 0, createdAt: at, updatedAt: at },
        { version: 1, sealedMaterial, publicKey: null, createdAt: at },
      );
      const key = await t.keys().open(ref);
      const context = v.context === null ? undefined : Buffer.from(v.context, 'base64');
      const { plaintext } = await decrypt(key, { ciphertext: v.ciphertext, context });
      expect(plaintext.toString('base64')).toBe(v.plaintext);
      // And the way back: what Rampart encrypts under the same key, Vault's layout, opens again.
      const ours = await encrypt(key, { plaintext: Buffer.from(v.plaintext, 'base64'), context });
      expect(Buffer.from(ours.ciphertext.slice('vault:v1:'.length), 'base64').length).toBe(Buffer.from(v.ciphertext.slice('vault:v1:'.length), 'base64').length);
      if (context) expect(await codeOf(() => decrypt(key, { ciphertext: v.ciphertext, context: Buffer.from('{"bar":"qux"}') }))).toBe('transit.decrypt_failed');
    });
  }
});
