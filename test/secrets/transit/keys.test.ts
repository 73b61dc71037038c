import { describe, expect, it } from 'vitest';
import { decrypt, encrypt } from '../../../src/secrets/transit/encryption.js';
import { describeKey } from '../../../src/secrets/transit/key-description.js';
import { TRANSIT_KEY_TYPES } from '../../../src/secrets/transit/key-type.js';
import { codeOf, transitFixture } from './transit-fixture.js';

describe('transit named keys', () => {
  const t = transitFixture();
  const ref = (name: string) => ({ tenant: 'acme', mount: 'transit_keys_test', name });
  const defaults = { type: 'aes256-gcm96' as const, derived: false, exportable: false, allowPlaintextBackup: false };

  it('creates every key type with Vault\'s defaults; creating again changes nothing', async () => {
    for (const type of TRANSIT_KEY_TYPES) {
      const first = await t.keys().create(ref(`k-${type}`), { ...defaults, type });
      expect(first.created).toBe(true);
      expect(first.key).toMatchObject({ type, latestVersion: 1, minDecryptionVersion: 1, minEncryptionVersion: 0, deletionAllowed: false, derived: false });
      const again = await t.keys().create(ref(`k-${type}`), { ...defaults, type: 'rsa-2048' });
      expect(again.created).toBe(false);
      expect(again.key.type).toBe(type);
    }
  });

  it('never shows private material: symmetric versions show a time, asymmetric ones a public key', async () => {
    for (const type of TRANSIT_KEY_TYPES) {
      const key = await t.keys().open(ref(`k-${type}`));
      const material = await key.material(1);
      const { key: record, versions } = await t.keys().read(key.ref);
      const shown = JSON.stringify(describeKey(record, versions));
      for (const secret of [material.key, material.hmacKey]) {
        expect(shown).not.toContain(secret.toString('base64'));
        expect(shown).not.toContain(secret.toString('hex'));
      }
      expect(shown).not.toContain('PRIVATE');
      const entry = (describeKey(record, versions).keys as Record<string, unknown>)['1'];
      if (type === 'aes256-gcm96' || type === 'chacha20-poly1305') expect(typeof entry).toBe('number');
      else expect(entry).toMatchObject({ public_key: expect.any(String), creation_time: record.createdAt });
    }
  });

  it('stores version material only sealed under the barrier, bound to its key and version', async () => {
    const key = await t.keys().open(ref('k-aes256-gcm96'));
    const { versions } = await t.keys().read(key.ref);
    expect(versions[0]!.sealedMaterial).toMatch(/^rb1:\d+:/);
    expect(versions[0]!.sealedMaterial).not.toContain((await key.material(1)).key.toString('base64'));
  });

  it('validates names', async () => {
    for (const bad of ['', 'a/b', '-lead', 'trail-', 'sp ace', '../x', 'x'.repeat(129)]) {
      expect(await codeOf(() => t.keys().create(ref(bad), defaults)), bad).toBe('transit.invalid_request');
    }
  });

  it('rotates: new ciphertexts use the latest version and old ones still open', async () => {
    const r = ref('rotating');
    await t.keys().create(r, defaults);
    const v1 = await encrypt(await t.keys().open(r), { plaintext: Buffer.from('one') });
    t.clock.advance(1000);
    expect((await t.keys().rotate(r)).latestVersion).toBe(2);
    const key = await t.keys().open(r);
    const v2 = await encrypt(key, { plaintext: Buffer.from('two') });
    expect(v2.keyVersion).toBe(2);
    expect((await decrypt(key, { ciphertext: v1.ciphertext })).plaintext.toString()).toBe('one');
    const { versions } = await t.keys().read(r);
    expect(versions.map((v) => v.version)).toEqual([1, 2]);
    expect(versions[1]!.createdAt > versions[0]!.createdAt).toBe(true);
  });

  it('applies the config rules', async () => {
    const r = ref('configured');
    await t.keys().create(r, defaults);
    await t.keys().rotate(r);
    await t.keys().rotate(r);
    expect(await codeOf(() => t.keys().configure(r, { minDecryptionVersion: 4 }))).toBe('transit.invalid_request');
    expect(await codeOf(() => t.keys().configure(r, { minEncryptionVersion: 4 }))).toBe('transit.invalid_request');
    expect(await codeOf(() => t.keys().configure(r, { minDecryptionVersion: -1 }))).toBe('transit.invalid_request');
    expect(await codeOf(() => t.keys().configure(r, { minDecryptionVersion: 3, minEncryptionVersion: 2 }))).toBe('transit.invalid_request');
    expect((await t.keys().configure(r, { minDecryptionVersion: 0 })).minDecryptionVersion).toBe(1);
    const changed = await t.keys().configure(r, { minDecryptionVersion: 2, minEncryptionVersion: 3, exportable: true });
    expect(changed).toMatchObject({ minDecryptionVersion: 2, minEncryptionVersion: 3, exportable: true, deletionAllowed: false });
    expect((await t.keys().read(r)).key).toMatchObject({ minDecryptionVersion: 2, minEncryptionVersion: 3, exportable: true });
    expect(await codeOf(() => t.keys().configure(r, { exportable: false }))).toBe('transit.invalid_request');
  });

  it('trims versions below min_available_version for good, and never past the minimums', async () => {
    const r = ref('trimmed');
    await t.keys().create(r, defaults);
    await t.keys().rotate(r);
    await t.keys().rotate(r);
    const old = await encrypt(await t.keys().open(r), { plaintext: Buffer.from('x'), keyVersion: 1 });
    expect(await codeOf(() => t.keys().trim(r, 2))).toBe('transit.invalid_request'); // above min_decryption_version 1
    await t.keys().configure(r, { minDecryptionVersion: 2 });
    expect(await codeOf(() => t.keys().trim(r, 0))).toBe('transit.invalid_request');
    expect((await t.keys().trim(r, 2)).minAvailableVersion).toBe(2);
    const { versions } = await t.keys().read(r);
    expect(versions.map((v) => v.version)).toEqual([2, 3]);
    const key = await t.keys().open(r);
    expect(await codeOf(() => key.material(1))).toBe('transit.version_disallowed');
    expect(await codeOf(() => decrypt(key, { ciphertext: old.ciphertext }))).toBe('transit.version_disallowed');
    expect(await codeOf(() => t.keys().configure(r, { minDecryptionVersion: 1 }))).toBe('transit.invalid_request');
    expect(await codeOf(() => t.keys().trim(r, 1))).toBe('transit.invalid_request');
  });

  it('deletes only when deletion_allowed, and then the key and its versions are gone', async () => {
    const r = ref('doomed');
    await t.keys().create(r, defaults);
    expect(await codeOf(() => t.keys().delete(r))).toBe('transit.deletion_not_allowed');
    await t.keys().open(r);
    await t.keys().configure(r, { deletionAllowed: true });
    await t.keys().delete(r);
    expect(await codeOf(() => t.keys().open(r))).toBe('transit.key_not_found');
    expect(await codeOf(() => t.keys().read(r))).toBe('transit.key_not_found');
    expect(await codeOf(() => t.keys().delete(r))).toBe('transit.key_not_found');
    // A new key of the same name has new material: nothing of the old one survives.
    await t.keys().create(r, defaults);
    expect((await t.keys().read(r)).versions.map((v) => v.version)).toEqual([1]);
  });

  it('lists names in order, paged, per tenant and mount', async () => {
    const names = (await t.keys().list('acme', 'transit_keys_test', undefined, 1000));
    expect(names).toEqual([...names].sort());
    const firstTwo = await t.keys().list('acme', 'transit_keys_test', undefined, 2);
    const next = await t.keys().list('acme', 'transit_keys_test', firstTwo[1], 2);
    expect([...firstTwo, ...next]).toEqual(names.slice(0, 4));
    expect(await t.keys().list('globex', 'transit_keys_test', undefined, 10)).toEqual([]);
    expect(await t.keys().list('acme', 'other_mount', undefined, 10)).toEqual([]);
  });

  it('keeps tenants apart: the same name in another tenant is another key', async () => {
    await t.keys().create({ tenant: 'globex', mount: 'transit_keys_test', name: 'configured' }, defaults);
    const ours = await t.keys().open(ref('configured'));
    const theirs = await t.keys().open({ tenant: 'globex', mount: 'transit_keys_test', name: 'configured' });
    const { ciphertext } = await encrypt(ours, { plaintext: Buffer.from('acme only') });
    expect(await codeOf(() => decrypt(theirs, { ciphertext }))).toBe('transit.decrypt_failed');
  });
});
