import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Dialect } from '../../src/store/database.js';
import { StaticMigrationProvider, migrateToLatest } from '../../src/store/migrations.js';
import type { TestDatabase } from './databases.js';

/** Untyped rows: a migration test writes tables as they were before the migration under test. */
export type LooseDatabase = Kysely<Record<string, Record<string, unknown>>>;

/**
 * A fresh database of `target` migrated up to, not including, the migration `before`, for tests
 * that write data in an old schema and check what that migration makes of it. `latest()` applies
 * the rest; `close()` drops the database.
 */
export async function databaseBefore(target: TestDatabase, before: string): Promise<{ db: LooseDatabase; dialect: Dialect; latest(): Promise<void>; close(): Promise<void> }> {
  const { url, drop } = await target.create();
  const dialect: Dialect = url ? 'postgres' : 'sqlite';
  const db: LooseDatabase = new Kysely({
    dialect: url ? new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) : new SqliteDialect({ database: new SqliteDatabase(':memory:') }),
  });
  const close = async () => {
    await db.destroy();
    await drop();
  };
  try {
    const provider = new StaticMigrationProvider(dialect);
    const names = Object.keys(await provider.getMigrations()).sort();
    const index = names.indexOf(before);
    if (index < 1) throw new Error(`no migration before ${before}`);
    const { error } = await new Migrator({ db, provider }).migrateTo(names[index - 1]!);
    if (error) throw error;
  } catch (err) {
    await close();
    throw err;
  }
  return { db, dialect, latest: () => migrateToLatest(db as never, dialect), close };
}
