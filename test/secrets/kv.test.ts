import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { SecretsSeal } from '../../src/secrets/seal.js';
import { kvEngine } from '../../src/secrets/kv/engine.js';
import { type KvContext, listKeys, readSecret, writeSecret } from '../../src/secrets/kv/secrets.js';
import type { KvKey } from '../../src/secrets/kv/store.js';
import { bindStores, transactor } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/** KV v2 domain rules (src/secrets/kv/secrets.ts) on each store, with an injected clock. */
describe.each(TEST_DATABASES)('KV v2 on $name', (target) => {
  const database = freshDatabase(target);
  const clock = new ManualClock();
  let seal: SecretsSeal;
  const ctx = (): KvContext => ({ store: bindStores(database().db, database().dialect).kv, sealer: seal.barrier, clock });
  const key = (path: string): KvKey => ({ tenant: 'acme', mount: 'kv_t', path });

  beforeAll(async () => {
    const key32 = randomBytes(32);
    seal = await SecretsSeal.open(bindStores(database().db, database().dialect).secretsKeyring, clock, () => key32);
  });

  it('lets exactly one of two concurrent check-and-set writes win', async () => {
    const transact = transactor(database());
    await transact((s) => writeSecret({ ...ctx(), store: s.kv }, key('race'), { v: 0 }, undefined));
    const attempts = await Promise.allSettled(
      [1, 2, 3].map((n) => transact((s) => writeSecret({ ...ctx(), store: s.kv }, key('race'), { v: n }, 1))),
    );
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    for (const a of attempts) if (a.status === 'rejected') expect(a.reason).toMatchObject({ code: 'secrets.cas_mismatch' });
    expect((await readSecret(ctx(), key('race'), undefined))?.metadata.version).toBe(2);
  });

  it('soft-deletes versions when delete_version_after passes', async () => {
    await ctx().store.putConfig({ tenant: 'acme', mount: 'kv_t', maxVersions: 0, casRequired: false, deleteVersionAfter: 3600 });
    await transactor(database())((s) => writeSecret({ ...ctx(), store: s.kv }, key('ephemeral'), { v: 1 }, undefined));
    expect((await readSecret(ctx(), key('ephemeral'), undefined))?.data).toEqual({ v: 1 });
    clock.advance(3_600_000);
    const gone = await readSecret(ctx(), key('ephemeral'), undefined);
    expect(gone?.data).toBeNull();
    expect(gone?.metadata.deletion_time).not.toBe('');
    await ctx().store.putConfig({ tenant: 'acme', mount: 'kv_t', maxVersions: 0, casRequired: false, deleteVersionAfter: 0 });
  });

  it('binds each ciphertext to its version, path and tenant', async () => {
    await transactor(database())(async (s) => {
      await writeSecret({ ...ctx(), store: s.kv }, key('bound'), { v: 'one' }, undefined);
      await writeSecret({ ...ctx(), store: s.kv }, key('bound'), { v: 'two' }, undefined);
    });
    const v1 = await ctx().store.version(key('bound'), 1);
    // An attacker with the database swaps version 1's ciphertext into version 2.
    await database().db.updateTable('kv_versions').set({ ciphertext: v1!.ciphertext }).where('path', '=', 'bound').where('version', '=', 2).execute();
    await expect(readSecret(ctx(), key('bound'), 2)).rejects.toMatchObject({ code: 'secrets.decrypt_failed' });
  });

  it('pages through keys after a cursor', async () => {
    await transactor(database())(async (s) => {
      for (const p of ['pg/a', 'pg/b', 'pg/c/d', 'pg/e']) await writeSecret({ ...ctx(), store: s.kv }, key(p), { p }, undefined);
    });
    expect(await listKeys(ctx(), 'acme', 'kv_t', 'pg/', undefined, undefined)).toEqual(['a', 'b', 'c/', 'e']);
    expect(await listKeys(ctx(), 'acme', 'kv_t', 'pg/', 'b', 2)).toEqual(['c/', 'e']);
    expect(await listKeys(ctx(), 'globex', 'kv_t', 'pg/', undefined, undefined)).toEqual([]);
  });

  it('refuses dot segments and empty segments in secret paths', async () => {
    const engine = kvEngine.create({ tenant: 'acme', path: 'kv', type: 'kv', accessor: 'kv_t', description: '', options: { version: '2' }, defaultLeaseTtl: 0, maxLeaseTtl: 0, createdAt: '' });
    const stores = bindStores(database().db, database().dialect);
    for (const path of ['data/a/../b', 'data/./a', 'data/a//b', 'metadata/..']) {
      await expect(engine.plan({ method: 'GET', path, query: {}, tenant: 'acme', mount: { tenant: 'acme', path: 'kv', type: 'kv', accessor: 'kv_t', description: '', options: {}, defaultLeaseTtl: 0, maxLeaseTtl: 0, createdAt: '' }, stores })).rejects.toMatchObject({
        code: 'secrets.invalid_request',
      });
    }
  });

  it('refuses reads while sealed', async () => {
    seal.seal();
    await expect(readSecret(ctx(), key('bound'), 1)).rejects.toMatchObject({ code: 'secrets.sealed' });
  });
});
