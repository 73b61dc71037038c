import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, open as openFile, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isRampartError } from '../../src/core/errors.js';
import { openDatabase } from '../../src/store/database.js';
import { CHECKPOINT_WORKER_AFTER_COMMITS, WAL_DRAIN_FRAMES } from '../../src/store/sqlite-checkpointer.js';
import { durableSqliteDialect } from '../../src/store/sqlite-durable-commit.js';
import { WriteLock } from '../../src/store/sqlite-write-lock.js';
import { WalFlushThread } from '../../src/store/wal-flush-thread.js';

/**
 * SQLite commits flushed off the event loop (src/store/sqlite-durable-commit.ts): a write is
 * answered only after the WAL's fdatasync has returned, nothing else reads the store meanwhile,
 * a failed flush stops the store, and the WAL checkpointer takes over from automatic checkpoints.
 * fdatasync is injected so that the tests decide when a flush returns.
 */

type Db = Kysely<{ t: { id: number; v: string } }>;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Flushes {
  readonly calls: { fd: number; done: (err: NodeJS.ErrnoException | null) => void }[];
  release(err?: NodeJS.ErrnoException): void;
}

async function open(manual: boolean, writeLock = new WriteLock()): Promise<{ db: Db; file: string; flushes: Flushes; sqlite: SqliteDatabase.Database; writeLock: WriteLock }> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-durable-'));
  dirs.push(dir);
  const file = join(dir, 'test.db');
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  const calls: Flushes['calls'] = [];
  let held = false; // the table is created with flushes answered at once
  const flushes: Flushes = {
    calls,
    release(err) {
      for (const c of calls.splice(0)) c.done(err ?? null);
    },
  };
  const fdatasync = ((fd: number, done: (err: NodeJS.ErrnoException | null) => void) => {
    calls.push({ fd, done });
    if (!held) flushes.release();
  }) as typeof import('node:fs').fdatasync;
  const db: Db = new Kysely({ dialect: durableSqliteDialect(sqlite, sqlite as never, file, { fdatasync, writeLock }) });
  await sql`create table t (id integer primary key, v text not null)`.execute(db);
  held = manual;
  return { db, file, flushes, sqlite, writeLock };
}

/** Lets every queued microtask and one turn of the event loop run. */
const turn = () => new Promise<void>((r) => setImmediate(r));

describe('durable SQLite commits', () => {
  it('answers an autocommit write only after the WAL flush, and flushes the WAL file itself', async () => {
    const { db, file, flushes } = await open(true);
    let done = false;
    const write = db.insertInto('t').values({ id: 1, v: 'a' }).execute().then(() => (done = true));
    await turn();
    expect(done).toBe(false);
    expect(flushes.calls).toHaveLength(1);
    // The descriptor flushed is the WAL's, where SQLite wrote the commit.
    expect(fstatSync(flushes.calls[0]!.fd).ino).toBe(statSync(`${file}-wal`).ino);
    flushes.release();
    await write;
    expect(done).toBe(true);
    await db.destroy();
  });

  it('answers a transaction only after the flush of its COMMIT, once per transaction', async () => {
    const { db, flushes } = await open(true);
    let done = false;
    const trx = db
      .transaction()
      .execute(async (t) => {
        await t.insertInto('t').values({ id: 1, v: 'a' }).execute();
        await t.insertInto('t').values({ id: 2, v: 'b' }).execute();
      })
      .then(() => (done = true));
    await turn();
    expect(flushes.calls).toHaveLength(1);
    expect(done).toBe(false);
    flushes.release();
    await trx;
    expect(done).toBe(true);
    await db.destroy();
  });

  it('keeps every other reader out until the flush has returned', async () => {
    const { db, flushes } = await open(true);
    const write = db.insertInto('t').values({ id: 1, v: 'unflushed' }).execute();
    await turn();
    let seen: string[] | undefined;
    const read = db
      .selectFrom('t')
      .select('v')
      .execute()
      .then((rows) => (seen = rows.map((r) => r.v)));
    await turn();
    await turn();
    // The committed but unflushed row is not visible to anyone: the read waits for the connection.
    expect(seen).toBeUndefined();
    flushes.release();
    await write;
    await read;
    expect(seen).toEqual(['unflushed']);
    await db.destroy();
  });

  it('does not flush for reads', async () => {
    const { db, flushes } = await open(true);
    await db.selectFrom('t').selectAll().execute();
    await db.transaction().execute((t) => t.selectFrom('t').selectAll().execute());
    expect(flushes.calls).toHaveLength(0);
    await db.destroy();
  });

  it('fails the write whose flush failed and refuses every later statement, telling the write lock', async () => {
    const { db, flushes, writeLock } = await open(true);
    const write = db.insertInto('t').values({ id: 1, v: 'a' }).execute();
    await turn();
    expect(writeLock.failed).toBe(false);
    flushes.release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const failed = await write.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isRampartError(failed) && failed.code).toBe('store.unavailable');
    // The audit thread shares the lock: it must stop writing too.
    expect(writeLock.failed).toBe(true);
    for (const next of [() => db.selectFrom('t').selectAll().execute(), () => db.insertInto('t').values({ id: 2, v: 'b' }).execute()]) {
      const err = await next().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isRampartError(err) && err.code).toBe('store.unavailable');
    }
    await db.destroy();
  });

  it('keeps the write lock while a failed COMMIT leaves its transaction open, until the rollback', async () => {
    // Records, at each release, whether the connection was still inside a transaction.
    const releasedInTransaction: boolean[] = [];
    const connection: { sqlite?: SqliteDatabase.Database } = {};
    const writeLock = new (class extends WriteLock {
      override release(): void {
        releasedInTransaction.push(connection.sqlite?.inTransaction ?? false);
        super.release();
      }
    })();
    const { db, sqlite } = await open(false, writeLock);
    connection.sqlite = sqlite;
    sqlite.pragma('foreign_keys = ON');
    await sql`create table parent (id integer primary key)`.execute(db);
    await sql`create table child (id integer primary key, parent integer references parent (id) deferrable initially deferred)`.execute(db);
    releasedInTransaction.length = 0;
    // A deferred foreign key is checked at COMMIT, which then fails and leaves the transaction
    // open (https://www.sqlite.org/foreignkeys.html#fk_deferred); Kysely rolls it back.
    const failed = await db
      .transaction()
      .execute((t) => sql`insert into child (id, parent) values (1, 99)`.execute(t))
      .then(
        () => undefined,
        (err: unknown) => err as { code?: string },
      );
    expect(failed?.code).toBe('SQLITE_CONSTRAINT_FOREIGNKEY');
    expect(releasedInTransaction).toEqual([false]);
    expect(sqlite.inTransaction).toBe(false);
    expect(await sql<{ n: number }>`select count(*) as n from child`.execute(db).then((r) => r.rows[0]?.n)).toBe(0);
    // The lock is free again.
    expect(writeLock.acquire()).toBeUndefined();
    writeLock.release();
    await db.destroy();
  });
});

describe('WAL flush thread', () => {
  it('flushes on a thread of its own, answering every caller, while libuv\'s pool is full', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-flush-thread-'));
    dirs.push(dir);
    const fd = openSync(join(dir, 'wal'), 'w');
    // Every thread of libuv's pool blocks opening a FIFO that has no writer yet, as slow name
    // lookups would hold it: a flush through fs.fdatasync would wait for them.
    const fifos = Array.from({ length: 8 }, (_, i) => join(dir, `fifo${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const blocked = fifos.map((f) => new Promise<void>((resolve) => openFile(f, 'r', (_e, readFd) => (readFd === undefined ? resolve() : (closeSync(readFd), resolve())))));
    const thread = new WalFlushThread(fd);
    try {
      writeSync(fd, 'frames');
      await expect(Promise.all([thread.flush(), thread.flush(), thread.flush()])).resolves.toEqual([undefined, undefined, undefined]);
    } finally {
      for (const f of fifos) closeSync(openSync(f, 'w'));
      await Promise.all(blocked);
      await thread.close();
      closeSync(fd);
    }
  });

  it('keeps answering when its request counters wrap past 2^31', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-flush-wrap-'));
    dirs.push(dir);
    const fd = openSync(join(dir, 'wal'), 'w');
    const thread = new WalFlushThread(fd, 2 ** 31 - 3);
    try {
      for (let i = 0; i < 6; i++) await thread.flush();
      await expect(Promise.all([thread.flush(), thread.flush()])).resolves.toEqual([undefined, undefined]);
    } finally {
      await thread.close();
      closeSync(fd);
    }
  });

  it('rejects a flush that failed, and every later one', async () => {
    const thread = new WalFlushThread(987_654); // not an open descriptor: EBADF
    try {
      await expect(thread.flush()).rejects.toMatchObject({ errno: expect.any(Number) });
      await expect(thread.flush()).rejects.toThrow(/fdatasync failed/);
    } finally {
      await thread.close();
    }
  });
});

describe('WAL checkpointer', () => {
  it('takes checkpoints over from the committing connection after enough writes', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-checkpointer-'));
    dirs.push(dir);
    const store = await openDatabase({ dataDir: dir });
    try {
      const db = store.db as unknown as Kysely<{ kv_probe: { id: number; v: string } }>;
      await sql`create table kv_probe (id integer primary key, v text not null)`.execute(db);
      const autocheckpoint = async () => Number((await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db)).rows[0]!.wal_autocheckpoint);
      expect(await autocheckpoint()).toBe(1000);
      const main = join(dir, 'rampart.db');
      for (let i = 0; i < CHECKPOINT_WORKER_AFTER_COMMITS + 64; i++) await db.insertInto('kv_probe').values({ id: i, v: 'x'.repeat(2000) }).execute();
      expect(await autocheckpoint()).toBe(0);
      const before = statSync(main).size;
      for (let i = 0; i < 256; i++) await db.insertInto('kv_probe').values({ id: 100_000 + i, v: 'y'.repeat(2000) }).execute();
      // Only a checkpoint writes pages into the database file; the committing connection no longer takes any.
      await vi.waitFor(() => expect(statSync(main).size).toBeGreaterThan(before), { timeout: 20_000, interval: 50 });
    } finally {
      await store.close();
    }
  });

  it('bounds the WAL under a steady write load: a commit waits for a whole checkpoint when the worker falls behind', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-checkpointer-bound-'));
    dirs.push(dir);
    const store = await openDatabase({ dataDir: dir });
    try {
      const db = store.db as unknown as Kysely<{ kv_probe: { id: number; v: string } }>;
      await sql`create table kv_probe (id integer primary key, v text not null)`.execute(db);
      // 30,000 writes of 2 KB, back to back: ~60 MB through the WAL. Without the drain, checkpoints
      // racing the commits never let SQLite start the WAL over, and it grows by all of it.
      const value = 'z'.repeat(2000);
      for (let i = 0; i < 30_000; i++) await db.insertInto('kv_probe').values({ id: i, v: value }).execute();
      const walBytes = statSync(join(dir, 'rampart.db-wal')).size;
      expect(walBytes).toBeLessThan(WAL_DRAIN_FRAMES * 4096 * 2.5);
      expect(Number((await sql<{ n: number }>`select count(*) as n from kv_probe`.execute(db)).rows[0]!.n)).toBe(30_000);
    } finally {
      await store.close();
    }
  });

  it('stops with the store: a process with nothing else to do finishes closing it', { timeout: 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-checkpointer-exit-'));
    dirs.push(dir);
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../support/checkpointer-exit.ts', import.meta.url)), dir], { encoding: 'utf8', timeout: 50_000 });
    expect({ status: child.status, stdout: child.stdout, stderr: child.stderr.replace(/npm warn.*\n/g, '') }).toEqual({ status: 0, stdout: 'closed\n', stderr: '' });
  });
});
