import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { Barrier } from '../../../src/secrets/barrier.js';
import { decrypt, encrypt } from '../../../src/secrets/transit/encryption.js';
import { TransitKeys } from '../../../src/secrets/transit/keys.js';
import type { TransitKeyRecord, TransitKeyVersionRecord } from '../../../src/secrets/transit/store.js';
import { SqlTransitKeyStore } from '../../../src/store/transit-key-store.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';

/** Contract suite for the TransitKeyStore port (src/secrets/transit/store.ts) on every test database. */
describe.each(TEST_DATABASES)('TransitKeyStore on $name', (target) => {
  const database = freshDatabase(target);
  const store = () => new SqlTransitKeyStore(database().db);
  const at = '2026-01-01T00:00:00.000Z';
  const ref = (name: string, tenant = 'acme', mount = 'transit_1') => ({ tenant, mount, name });
  const record = (name: string, tenant = 'acme', mount = 'transit_1'): TransitKeyRecord => ({
    ...ref(name, tenant, mount),
    type: 'ed25519',
    derived: false,
    exportable: true,
    allowPlaintextBackup: false,
    deletionAllowed: false,
    latestVersion: 1,
    minDecryptionVersion: 1,
    minEncryptionVersion: 0,
    minAvailableVersion: 0,
    createdAt: at,
    updatedAt: at,
  });
  const version = (v: number, publicKey: string | null = `pub-${v}`): TransitKeyVersionRecord => ({
    version: v,
    sealedMaterial: `rb1:1:sealed-${v}`,
    publicKey,
    createdAt: at,
  });

  it('creates a key with its first version, once', async () => {
    expect(await store().get(ref('a'))).toBeUndefined();
    expect(await store().create(record('a'), version(1))).toBe(true);
    expect(await store().get(ref('a'))).toEqual(record('a'));
    expect(await store().versions(ref('a'))).toEqual([version(1)]);
    expect(await store().create({ ...record('a'), type: 'rsa-2048' }, version(1, null))).toBe(false);
    expect((await store().get(ref('a')))!.type).toBe('ed25519');
    expect(await store().version(ref('a'), 1)).toEqual(version(1));
    expect(await store().version(ref('a'), 2)).toBeUndefined();
  });

  it('adds a version only on top of the expected latest one', async () => {
    expect(await store().addVersion(ref('a'), version(2), '2026-01-02T00:00:00.000Z')).toBe(true);
    expect(await store().addVersion(ref('a'), version(2), at)).toBe(false);
    expect(await store().addVersion(ref('a'), version(4), at)).toBe(false);
    expect(await store().addVersion(ref('missing'), version(2), at)).toBe(false);
    expect((await store().get(ref('a')))!).toMatchObject({ latestVersion: 2, updatedAt: '2026-01-02T00:00:00.000Z' });
    expect((await store().versions(ref('a'))).map((v) => v.version)).toEqual([1, 2]);
  });

  it('lets exactly one of several racing rotations claim a version', async () => {
    await store().create(record('race'), version(1));
    const results = await Promise.all(
      Array.from({ length: 6 }, () => database().db.transaction().execute((trx) => new SqlTransitKeyStore(trx).addVersion(ref('race'), version(2), at))),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await store().versions(ref('race'))).map((v) => v.version)).toEqual([1, 2]);
  });

  it('configures, trims and deletes', async () => {
    await store().configure(ref('a'), {
      minDecryptionVersion: 2,
      minEncryptionVersion: 2,
      deletionAllowed: true,
      exportable: true,
      allowPlaintextBackup: true,
      updatedAt: at,
    });
    expect(await store().get(ref('a'))).toMatchObject({ minDecryptionVersion: 2, minEncryptionVersion: 2, deletionAllowed: true, allowPlaintextBackup: true });
    await store().trim(ref('a'), 2, at);
    expect((await store().get(ref('a')))!.minAvailableVersion).toBe(2);
    expect((await store().versions(ref('a'))).map((v) => v.version)).toEqual([2]);
    expect(await store().delete(ref('a'))).toBe(true);
    expect(await store().delete(ref('a'))).toBe(false);
    expect(await store().get(ref('a'))).toBeUndefined();
    expect(await store().versions(ref('a'))).toEqual([]);
  });

  it('scopes every read by tenant and mount, lists in pages, and purges one mount', async () => {
    for (const name of ['k3', 'k1', 'k2', 'k4']) await store().create(record(name, 'paged'), version(1));
    await store().create(record('k1', 'other-tenant'), version(1));
    await store().create(record('k1', 'paged', 'transit_2'), version(1));
    expect(await store().list('paged', 'transit_1', undefined, 10)).toEqual(['k1', 'k2', 'k3', 'k4']);
    expect(await store().list('paged', 'transit_1', undefined, 2)).toEqual(['k1', 'k2']);
    expect(await store().list('paged', 'transit_1', 'k2', 2)).toEqual(['k3', 'k4']);
    expect(await store().list('paged', 'transit_2', undefined, 10)).toEqual(['k1']);
    expect(await store().get(ref('k2', 'other-tenant'))).toBeUndefined();
    await store().purge('paged', 'transit_1');
    expect(await store().list('paged', 'transit_1', undefined, 10)).toEqual([]);
    expect(await store().versions(ref('k1', 'paged'))).toEqual([]);
    expect(await store().list('paged', 'transit_2', undefined, 10)).toEqual(['k1']);
    expect(await store().list('other-tenant', 'transit_1', undefined, 10)).toEqual(['k1']);
  });

  it('serves concurrent rotations through TransitKeys: every one lands, versions stay contiguous', async () => {
    const barrier = new Barrier();
    let blob: string | undefined;
    await barrier.unseal(randomBytes(32), { load: async () => blob, initialize: async (c) => ((blob = c), true) }, new ManualClock());
    const clock = new ManualClock();
    const keyRef = ref('rotated-concurrently');
    await new TransitKeys(store(), barrier, clock).create(keyRef, { type: 'aes256-gcm96', derived: false, exportable: false, allowPlaintextBackup: false });
    await Promise.all(
      Array.from({ length: 4 }, () =>
        database().db.transaction().execute((trx) => new TransitKeys(new SqlTransitKeyStore(trx), barrier, clock).rotate(keyRef)),
      ),
    );
    const keys = new TransitKeys(store(), barrier, clock);
    expect((await keys.read(keyRef)).versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5]);
    const key = await keys.open(keyRef);
    for (let v = 1; v <= 5; v++) {
      const { ciphertext } = await encrypt(key, { plaintext: Buffer.from(`v${v}`), keyVersion: v });
      expect((await decrypt(key, { ciphertext })).plaintext.toString()).toBe(`v${v}`);
    }
  });
});
