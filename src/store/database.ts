import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { StoreError } from '../core/errors.js';
import { migrateToLatest } from './migrations.js';
import { durableSqliteDialect } from './sqlite-durable-commit.js';
import { withStatementCache } from './sqlite-statement-cache.js';
import { WriteLock } from './sqlite-write-lock.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface StoreDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /**
   * A SQLite file store: its path and the write lock that another thread opening the same file
   * must take (./sqlite-write-lock.ts). Absent for PostgreSQL and in-memory databases.
   */
  readonly sqliteFile?: { readonly path: string; readonly writeLock: WriteLock };
  /** Answers when the store is reachable; throws StoreError('store.unavailable') otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** `postgres://…`; absent means SQLite at `<dataDir>/rampart.db`. */
  readonly databaseUrl?: string | undefined;
  readonly dataDir: string;
  /** For tests: an in-memory SQLite database instead of a file. */
  readonly inMemory?: boolean;
}

const INT8_OID = 20;

/** Opens the store and brings its schema to the latest migration. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<StoreDatabase> {
  const store = options.databaseUrl ? openPostgres(options.databaseUrl) : openSqlite(options);
  try {
    await store.ping();
    await migrateToLatest(store.db as Kysely<unknown>, store.dialect);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

function openSqlite(options: OpenDatabaseOptions): StoreDatabase {
  let file = ':memory:';
  if (!options.inMemory) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    file = join(options.dataDir, 'rampart.db');
  }
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // An acknowledged audit event or token must survive a power loss: a file database flushes the
  // WAL before answering, as `synchronous = FULL` would, but off the event loop
  // (sqlite-durable-commit.ts).
  const sqliteFile = options.inMemory ? undefined : { path: file, writeLock: new WriteLock() };
  const dialect = sqliteFile
    ? durableSqliteDialect(sqlite, withStatementCache(sqlite), file, { writeLock: sqliteFile.writeLock })
    : new SqliteDialect({ database: withStatementCache(sqlite) });
  const db = new Kysely<Database>({ dialect });
  return {
    db,
    dialect: 'sqlite',
    ...(sqliteFile ? { sqliteFile } : {}),
    async ping() {
      if (!sqlite.open) throw new StoreError('store.unavailable', 'the SQLite database is closed');
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

function openPostgres(url: string): StoreDatabase {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 5000,
    // 64-bit integers (leaf indexes, tree sizes) come back as strings by default; every value we
    // store fits in a double's 53-bit integer range.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its connection must not crash the process; the next query fails
  // with a store error instead.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    async ping() {
      try {
        await sql`select 1`.execute(db);
      } catch (err) {
        throw new StoreError('store.unavailable', `PostgreSQL is unreachable: ${(err as Error).message}`, { cause: err });
      }
    },
    close: () => db.destroy(),
  };
}
