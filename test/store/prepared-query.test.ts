import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KvKey } from '../../src/secrets/kv/store.js';
import { PreparedQuery } from '../../src/store/prepared-query.js';
import { bindStores, transactor } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * PreparedQuery (compiled once, run with new values) and the hot reads built on it: the KV
 * metadata-with-version read of `GET data/`, on every store in TEST_DATABASES.
 */
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe.each(TEST_DATABASES)('prepared queries on $name', (target) => {
  const database = freshDatabase(target);
  const stores = () => bindStores(database().db, database().dialect);

  beforeAll(async () => {
    for (const name of ['acme', 'globex']) await stores().tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: at(0) });
  });

  it('binds the values by name, whatever order the compiler puts the placeholders in, in and out of transactions', async () => {
    const q = new PreparedQuery((db, p: { b: string; a: string }) =>
      db.selectFrom('tenants').select('name').where('name', 'in', [p.a, p.b]).where('created_at', '<>', p.b).orderBy('name'),
    );
    const db = database().db;
    expect((await q.execute(db, { a: 'acme', b: 'globex' })).map((r) => r.name)).toEqual(['acme', 'globex']);
    expect((await q.execute(db, { a: 'acme', b: 'nobody' })).map((r) => r.name)).toEqual(['acme']);
    await db.transaction().execute(async (trx) => {
      expect((await q.execute(trx, { a: 'globex', b: 'x' })).map((r) => r.name)).toEqual(['globex']);
    });
  });

  it('refuses a query that binds a value of its own, which every execution would silently reuse', async () => {
    const q = new PreparedQuery((db, p: { name: string }) => db.selectFrom('tenants').select('name').where('name', '=', p.name).where('created_at', '>', at(0)));
    await expect(q.execute(database().db, { name: 'acme' })).rejects.toThrow(/binds a literal value/);
  });

  it('treats a value as data, never as SQL', async () => {
    const q = new PreparedQuery((db, p: { name: string }) => db.selectFrom('tenants').select('name').where('name', '=', p.name));
    expect(await q.execute(database().db, { name: "acme' or '1'='1" })).toEqual([]);
    expect(await sql<{ n: number }>`select count(*) as n from tenants`.execute(database().db).then((r) => Number(r.rows[0]!.n))).toBeGreaterThanOrEqual(2);
  });

  describe('KvStore.readVersion', () => {
    const key: KvKey = { tenant: 'acme', mount: 'kv_r', path: 'app/db' };

    beforeAll(async () => {
      await transactor(database())(async (tx) => {
        const meta = await tx.kv.lockMetadata(key, at(1));
        for (const v of [1, 2, 3]) await tx.kv.insertVersion({ ...key, version: v, ciphertext: `c${v}`, createdAt: at(v), deletionTime: v === 2 ? at(9) : null, destroyed: false });
        await tx.kv.putMetadata({ ...meta, currentVersion: 3, oldestVersion: 1, customMetadata: { owner: 'team' }, updatedAt: at(3) });
        // The same path in another tenant and another mount, which must never be joined in.
        for (const other of [{ ...key, tenant: 'globex' }, { ...key, mount: 'kv_other' }]) {
          const m = await tx.kv.lockMetadata(other, at(1));
          await tx.kv.insertVersion({ ...other, version: 1, ciphertext: 'other', createdAt: at(1), deletionTime: null, destroyed: false });
          await tx.kv.putMetadata({ ...m, currentVersion: 1, oldestVersion: 1, updatedAt: at(1) });
        }
      });
    });

    it('reads the current version (0) or the asked one with its metadata, as metadata() and version() do', async () => {
      const s = stores().kv;
      const metadata = await s.metadata(key);
      for (const [asked, expected] of [
        [0, 3],
        [3, 3],
        [2, 2],
        [1, 1],
      ] as const) {
        const found = await s.readVersion(key, asked);
        expect(found).toEqual({ metadata, version: await s.version(key, expected) });
      }
      expect((await s.readVersion(key, 2))?.version).toMatchObject({ version: 2, ciphertext: 'c2', deletionTime: at(9), destroyed: false });
    });

    it('answers a missing version with the metadata alone, and a missing secret with undefined', async () => {
      const s = stores().kv;
      expect(await s.readVersion(key, 4)).toEqual({ metadata: await s.metadata(key), version: undefined });
      expect(await s.readVersion({ ...key, path: 'app/none' }, 0)).toBeUndefined();
      expect(await s.readVersion({ ...key, tenant: 'nobody' }, 1)).toBeUndefined();
    });

    it('keeps tenants and mounts apart', async () => {
      const s = stores().kv;
      expect((await s.readVersion({ ...key, tenant: 'globex' }, 0))?.version?.ciphertext).toBe('other');
      expect((await s.readVersion({ ...key, mount: 'kv_other' }, 0))?.version?.ciphertext).toBe('other');
      expect((await s.readVersion(key, 0))?.version?.ciphertext).toBe('c3');
    });

    it('shows a destroyed version as destroyed, without ciphertext', async () => {
      const k = { ...key, path: 'app/gone' };
      await transactor(database())(async (tx) => {
        const meta = await tx.kv.lockMetadata(k, at(1));
        await tx.kv.insertVersion({ ...k, version: 1, ciphertext: 'c', createdAt: at(1), deletionTime: null, destroyed: false });
        await tx.kv.putMetadata({ ...meta, currentVersion: 1, oldestVersion: 1, updatedAt: at(1) });
        await tx.kv.updateVersion(k, 1, { destroy: true });
      });
      expect((await stores().kv.readVersion(k, 0))?.version).toMatchObject({ version: 1, ciphertext: null, destroyed: true });
    });
  });
});
