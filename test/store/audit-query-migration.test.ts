import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SqlAuditSaltStore } from '../../src/store/audit-salt-store.js';
import { openAuditHasher } from '../../src/audit/hasher.js';
import { StaticMigrationProvider, migrateToLatest } from '../../src/store/migrations.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

const sealer = {
  encrypt: (_t: string, _r: string, p: Uint8Array) => Buffer.from(p).toString('base64'),
  decrypt: (_t: string, _r: string, c: string) => Buffer.from(c, 'base64'),
};

describe.each(TEST_DATABASES)('audit query columns on $name', (target) => {
  it('backfills the indexed columns of events written before migration 0005', async () => {
    const { url, drop } = await target.create();
    const dialect = url ? 'postgres' : 'sqlite';
    const db = new Kysely<Record<string, Record<string, unknown>>>({
      dialect: url ? new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) : new SqliteDialect({ database: new SqliteDatabase(':memory:') }),
    });
    try {
      const provider = new StaticMigrationProvider(dialect);
      const names = Object.keys(await provider.getMigrations()).sort();
      const before = names[names.indexOf('0005_audit_query') - 1]!;
      const first = await new Migrator({ db, provider }).migrateTo(before);
      expect(first.error).toBeUndefined();
      const payload = { time: '2026-01-01T00:00:00.000Z', principal: { id: 'acc' }, action: 'token:create', resource: { id: 'default/tokens' }, outcome: 'success' };
      await db.insertInto('audit_events').values({ tenant: 'default', recorded_at: 't', payload: JSON.stringify(payload) }).execute();
      await db.insertInto('audit_events').values({ tenant: 'default', recorded_at: 't', payload: JSON.stringify({ time: 'x', principal: null, action: null, resource: null, outcome: 'unauthenticated' }) }).execute();
      await migrateToLatest(db as never, dialect);
      const rows = await db.selectFrom('audit_events').select(['event_time', 'principal_id', 'action', 'resource', 'outcome']).orderBy('id').execute();
      expect(rows).toEqual([
        { event_time: '2026-01-01T00:00:00.000Z', principal_id: 'acc', action: 'token:create', resource: 'default/tokens', outcome: 'success' },
        { event_time: 'x', principal_id: null, action: null, resource: null, outcome: 'unauthenticated' },
      ]);
    } finally {
      await db.destroy();
      await drop();
    }
  });
});

describe.each(TEST_DATABASES)('audit salt on $name', (target) => {
  const database = freshDatabase(target);

  it('is created once and reused, so hashes stay comparable across restarts', async () => {
    const store = new SqlAuditSaltStore(database().db);
    const first = await openAuditHasher(store, sealer, () => new Date());
    const again = await openAuditHasher(store, sealer, () => new Date());
    expect(again.hash('v')).toBe(first.hash('v'));
    expect(first.hash('v')).not.toBe(first.hash('w'));
  });
});
