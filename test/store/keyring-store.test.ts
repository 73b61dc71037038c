import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { SecretsError } from '../../src/core/errors.js';
import { Barrier } from '../../src/secrets/barrier.js';
import { SqlKeyringStore } from '../../src/store/keyring-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suite for the KeyringStore port (src/secrets/store.ts) and the Barrier that uses it,
 * against every store in TEST_DATABASES; each describe block has its own fresh database.
 */


/** The error `work` throws or rejects with (undefined when it succeeds). */
async function failureOf(work: () => unknown): Promise<unknown> {
  try {
    await work();
    return undefined;
  } catch (err) {
    return err;
  }
}

async function expectSecretsError(work: () => unknown, code: SecretsError['code']): Promise<void> {
  const err = await failureOf(work);
  expect(err).toBeInstanceOf(SecretsError);
  expect((err as SecretsError).code).toBe(code);
}

describe.each(TEST_DATABASES)('KeyringStore on $name', (target) => {
  describe('initialize and load', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const keyring = () => new SqlKeyringStore(database().db);

    it('has no keyring before the first initialize', async () => {
      expect(await keyring().load()).toBeUndefined();
    });

    it('stores the first blob once; a second initialize answers false and does not overwrite', async () => {
      const first = clock.now().toISOString();
      expect(await keyring().initialize('blob-one', first)).toBe(true);
      expect(await keyring().load()).toBe('blob-one');

      clock.advance(60_000);
      expect(await keyring().initialize('blob-two', clock.now().toISOString())).toBe(false);
      expect(await keyring().load()).toBe('blob-one');

      const rows = await database().db.selectFrom('barrier_keyring').selectAll().execute();
      expect(rows.map((r) => ({ ...r, id: Number(r.id) }))).toEqual([{ id: 1, ciphertext: 'blob-one', updated_at: first }]);
    });
  });

  describe('concurrent initialize', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();

    it('lets exactly one of several racing writers win, and keeps its blob', async () => {
      const blobs = Array.from({ length: 8 }, (_, i) => `blob-${i}`);
      // Separate store objects, as separate replicas would have.
      const results = await Promise.all(blobs.map((b) => new SqlKeyringStore(database().db).initialize(b, clock.now().toISOString())));
      expect(results.filter((r) => r)).toHaveLength(1);
      expect(await new SqlKeyringStore(database().db).load()).toBe(blobs[results.indexOf(true)]);
    });
  });

  describe('Barrier over the store', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const keyring = () => new SqlKeyringStore(database().db);
    const rootKey = randomBytes(32);
    const secret = Buffer.from('-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n');
    let stored: string | undefined;
    let ciphertext: string;

    it('refuses to encrypt or decrypt while sealed', async () => {
      const barrier = new Barrier();
      expect(barrier.sealed).toBe(true);
      await expectSecretsError(() => barrier.encrypt('acme', 'ca-1', secret), 'secrets.sealed');
      await expectSecretsError(() => barrier.decrypt('acme', 'ca-1', 'rb1:1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'secrets.sealed');
    });

    it('creates the keyring on first unseal and round-trips a record', async () => {
      expect(await keyring().load()).toBeUndefined();
      const barrier = new Barrier();
      await barrier.unseal(rootKey, keyring(), clock);
      expect(barrier.sealed).toBe(false);
      stored = await keyring().load();
      expect(stored).toBeDefined();
      // The stored keyring is ciphertext, not the key material in the clear.
      expect(stored).not.toContain('activeTerm');

      ciphertext = barrier.encrypt('acme', 'ca-1', secret);
      expect(ciphertext).toMatch(/^rb1:1:[A-Za-z0-9+/=]+$/);
      expect(barrier.decrypt('acme', 'ca-1', ciphertext)).toEqual(secret);
      // A fresh nonce per write.
      expect(barrier.encrypt('acme', 'ca-1', secret)).not.toBe(ciphertext);
    });

    it('reloads the same keyring on a later unseal, which decrypts earlier records', async () => {
      const again = new Barrier();
      await again.unseal(rootKey, keyring(), clock);
      expect(await keyring().load()).toBe(stored);
      expect(again.decrypt('acme', 'ca-1', ciphertext)).toEqual(secret);
    });

    it('decrypts a record only under its own tenant and record id', async () => {
      const barrier = new Barrier();
      await barrier.unseal(rootKey, keyring(), clock);
      await expectSecretsError(() => barrier.decrypt('acme', 'ca-2', ciphertext), 'secrets.decrypt_failed');
      await expectSecretsError(() => barrier.decrypt('globex', 'ca-1', ciphertext), 'secrets.decrypt_failed');
      await expectSecretsError(() => barrier.decrypt('globex', 'ca-2', ciphertext), 'secrets.decrypt_failed');
      // The separator keeps tenant and id from running into each other.
      await expectSecretsError(() => barrier.decrypt('acmeca-1', '', ciphertext), 'secrets.decrypt_failed');
      expect(barrier.decrypt('acme', 'ca-1', ciphertext)).toEqual(secret);
    });

    it('refuses a tampered ciphertext', async () => {
      const barrier = new Barrier();
      await barrier.unseal(rootKey, keyring(), clock);
      const body = Buffer.from(ciphertext.slice('rb1:1:'.length), 'base64');
      body[14] = body[14]! ^ 0x01;
      await expectSecretsError(() => barrier.decrypt('acme', 'ca-1', `rb1:1:${body.toString('base64')}`), 'secrets.decrypt_failed');
      await expectSecretsError(() => barrier.decrypt('acme', 'ca-1', ciphertext.replace('rb1:1:', 'rb1:2:')), 'secrets.decrypt_failed');
      await expectSecretsError(() => barrier.decrypt('acme', 'ca-1', 'plaintext'), 'secrets.decrypt_failed');
    });

    it('refuses a wrong root key and does not replace the keyring', async () => {
      const wrong = new Barrier();
      await expectSecretsError(() => wrong.unseal(randomBytes(32), keyring(), clock), 'secrets.decrypt_failed');
      expect(wrong.sealed).toBe(true);
      await expectSecretsError(() => wrong.encrypt('acme', 'ca-1', secret), 'secrets.sealed');
      await expectSecretsError(() => wrong.unseal(rootKey.subarray(0, 16), keyring(), clock), 'secrets.decrypt_failed');
      expect(wrong.sealed).toBe(true);

      expect(await keyring().load()).toBe(stored);
      const rows = await database().db.selectFrom('barrier_keyring').select('ciphertext').execute();
      expect(rows).toEqual([{ ciphertext: stored }]);

      // The right key still opens it, and earlier records still decrypt.
      const right = new Barrier();
      await right.unseal(rootKey, keyring(), clock);
      expect(right.decrypt('acme', 'ca-1', ciphertext)).toEqual(secret);
    });

    it('is sealed again after seal()', async () => {
      const barrier = new Barrier();
      await barrier.unseal(rootKey, keyring(), clock);
      barrier.seal();
      expect(barrier.sealed).toBe(true);
      await expectSecretsError(() => barrier.encrypt('acme', 'ca-1', secret), 'secrets.sealed');
      await expectSecretsError(() => barrier.decrypt('acme', 'ca-1', ciphertext), 'secrets.sealed');
    });
  });

  describe('Barrier, racing first unseals', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();

    it('ends with one keyring that every racer uses', async () => {
      const rootKey = randomBytes(32);
      const barriers = Array.from({ length: 4 }, () => new Barrier());
      await Promise.all(barriers.map((b) => b.unseal(rootKey, new SqlKeyringStore(database().db), clock)));
      const rows = await database().db.selectFrom('barrier_keyring').select('ciphertext').execute();
      expect(rows).toHaveLength(1);
      // A record written through any of them decrypts through all of them.
      for (const writer of barriers) {
        const ct = writer.encrypt('acme', 'rec', Buffer.from('shared'));
        for (const reader of barriers) expect(reader.decrypt('acme', 'rec', ct).toString()).toBe('shared');
      }
    });
  });
});
