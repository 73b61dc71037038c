import { closeSync, type fdatasync, openSync } from 'node:fs';
import type SqliteDatabase from 'better-sqlite3';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  SqliteDialect,
  type SqliteDatabase as SqliteDialectDatabase,
  type TransactionSettings,
} from 'kysely';
import { StoreError } from '../core/errors.js';
import { WalCheckpointer } from './sqlite-checkpointer.js';
import { WalFlushThread } from './wal-flush-thread.js';
import { WriteLock } from './sqlite-write-lock.js';

export interface DurableCommitOptions {
  /** For tests: stands in for the flush thread's fdatasync. */
  readonly fdatasync?: typeof fdatasync;
  /**
   * Shared with the threads that write to the same file (./sqlite-write-lock.ts). Taken before
   * every transaction and every autocommit statement that may write, and held until its flush
   * has returned.
   */
  readonly writeLock?: WriteLock;
}

/**
 * SQLite commits made durable off the event loop.
 *
 * With `synchronous = FULL` in WAL mode SQLite fsyncs the WAL inside COMMIT, and better-sqlite3
 * runs COMMIT on the calling thread: the event loop then stands still for the fsync (about
 * 150 µs on the development machine's disk, more on a shared one) once per committed batch, the
 * largest single cost of a KV read in the profile. Here the connection runs with `synchronous =
 * NORMAL`, so COMMIT only write()s the transaction's frames to the WAL, and the frames are then
 * flushed with fdatasync(2) on the WAL file by a thread of its own (./wal-flush-thread.ts, not
 * libuv's pool, which slow name lookups can fill). What that flush makes durable
 * is what FULL's would: in WAL mode FULL differs from NORMAL only by that sync of the WAL at each
 * commit, and checkpoints sync under either setting
 * (https://www.sqlite.org/pragma.html#pragma_synchronous).
 *
 * Two rules keep the guarantees of FULL:
 * - The caller of a write is answered only once the flush has returned: the commit (or the
 *   autocommit statement) resolves after it, so the group committer's works, the audit log's
 *   appends and every other store write are acknowledged only when on disk.
 * - The connection stays held until the flush has returned. Kysely's SQLite driver lends its
 *   single connection to one user at a time, and the transaction releases it only after commit
 *   resolves, so no other read of this connection can see a committed row that a power loss could
 *   take back (the audit thread's own connection can, see ./sqlite-audit-worker.ts). What
 *   the event loop does meanwhile is everything else: TLS, parsing, authentication, Cedar,
 *   cryptography, the answers of the batch before.
 *
 * Within this process, that is: another process with its own connection to the file (`rampart
 * audit verify --data-dir` on the server's host) may read a commit before its flush, as it would
 * under NORMAL.
 *
 * A failed flush leaves the page cache in an unknown state (Linux may drop the dirty pages and
 * report success to a later fsync; PostgreSQL's "fsyncgate", 2018): the store then refuses every
 * further statement with `store.unavailable`, the writes waiting on that flush fail (what they
 * committed may or may not be on disk, as after any failed commit), the checkpoint worker
 * stops copying the WAL into the database file, and the write lock tells the audit thread to stop
 * writing as well (./sqlite-write-lock.ts). Closing the connection (at shutdown, or
 * better-sqlite3's own hook at process exit, which cannot be told otherwise) still runs SQLite's
 * final checkpoint: a disk that failed an fsync is not trusted by any of this, and the operator
 * has to check it (`rampart audit verify --data-dir`) before trusting the store again.
 */
export function durableSqliteDialect(sqlite: SqliteDatabase.Database, database: SqliteDialectDatabase, file: string, options: DurableCommitOptions = {}): SqliteDialect {
  sqlite.pragma('synchronous = NORMAL');
  const checkpointer = new WalCheckpointer(sqlite, file);
  const lock = options.writeLock ?? new WriteLock();
  const wal = new WalFlusher(`${file}-wal`, options.fdatasync, () => {
    checkpointer.halt();
    lock.fail();
  });
  const tracker = new WriteTracker(database);
  return new (class extends SqliteDialect {
    override createDriver(): Driver {
      return new DurableDriver(super.createDriver(), sqlite, tracker, wal, checkpointer, lock);
    }
  })({ database: tracker.database });
}

/** Remembers whether a statement that may write ran since the last flush. */
class WriteTracker {
  readonly database: SqliteDialectDatabase;
  #last: SqliteDatabase.Statement | undefined;
  dirty = false;

  constructor(inner: SqliteDialectDatabase) {
    this.database = {
      close: () => inner.close(),
      prepare: (text: string) => {
        const stmt = inner.prepare(text) as unknown as SqliteDatabase.Statement;
        this.#last = stmt;
        return stmt as never;
      },
    };
  }

  /**
   * Called after each statement. `readonly` is sqlite3_stmt_readonly(): false for anything that
   * may change the file (RETURNING and DDL included); true for BEGIN, COMMIT, SAVEPOINT and
   * RELEASE, whose durability follows from the writes before them.
   */
  noteExecuted(): void {
    if (this.#last && !this.#last.readonly) this.dirty = true;
    this.#last = undefined;
  }
}

class WalFlusher {
  readonly #path: string;
  readonly #fdatasync: typeof fdatasync | undefined;
  readonly #onFailure: () => void;
  #fd: number | undefined;
  #thread: WalFlushThread | undefined;
  #closing = false;
  #failed: unknown;
  #inflight: Promise<void> | undefined;

  constructor(path: string, sync: typeof fdatasync | undefined, onFailure: () => void) {
    this.#path = path;
    this.#fdatasync = sync;
    this.#onFailure = onFailure;
  }

  refuseIfFailed(): void {
    if (this.#failed !== undefined) {
      throw new StoreError('store.unavailable', 'an earlier flush of the SQLite WAL failed; the store refuses work until the process restarts', { cause: this.#failed });
    }
  }

  flush(): Promise<void> {
    this.refuseIfFailed();
    // A write that got the connection while the store was being destroyed (Kysely's destroy does
    // not wait for it): refused without marking the store failed.
    if (this.#closing) return Promise.reject(new StoreError('store.unavailable', 'the store is closing'));
    // Opened on first use (SQLite creates the WAL with the first write) and kept open: closing a
    // descriptor of a file SQLite has open would drop its POSIX locks on that file.
    let fd: number;
    let thread: WalFlushThread | undefined;
    const sync = this.#fdatasync;
    try {
      fd = this.#fd ??= openSync(this.#path, 'r+');
      if (!sync) thread = this.#thread ??= new WalFlushThread(fd);
    } catch (err) {
      return Promise.reject(this.#fail(err));
    }
    const flushed = thread
      ? thread.flush().catch((err: unknown) => {
          throw this.#fail(err);
        })
      : new Promise<void>((resolve, reject) => sync!(fd, (err) => (err ? reject(this.#fail(err)) : resolve())));
    this.#inflight = flushed.then(
      () => undefined,
      () => undefined,
    );
    return flushed;
  }

  /** Closes the descriptor once no flush is using it (Kysely's destroy does not wait for the connection). */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#inflight;
    await this.#thread?.close();
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #fail(err: unknown): StoreError {
    if (this.#failed === undefined) {
      this.#failed = err;
      this.#onFailure();
    }
    return new StoreError('store.unavailable', 'the SQLite WAL could not be flushed to disk', { cause: err });
  }
}

/** Whether a statement is a plain SELECT, which cannot write (a WITH may carry an INSERT). */
function isSelect(text: string): boolean {
  let i = 0;
  while (i < text.length && text.charCodeAt(i) <= 32) i++;
  return text.length - i >= 6 && text.slice(i, i + 6).toLowerCase() === 'select';
}

class DurableDriver implements Driver {
  readonly #inner: Driver;
  readonly #sqlite: SqliteDatabase.Database;
  readonly #tracker: WriteTracker;
  readonly #wal: WalFlusher;
  readonly #checkpointer: WalCheckpointer;
  readonly #lock: WriteLock;
  readonly #connections = new WeakMap<DatabaseConnection, DatabaseConnection>();
  /**
   * Whether this connection holds the write lock. Kysely's SQLite driver lends its one connection
   * to one user at a time, so a flag suffices.
   */
  #locked = false;

  constructor(inner: Driver, sqlite: SqliteDatabase.Database, tracker: WriteTracker, wal: WalFlusher, checkpointer: WalCheckpointer, lock: WriteLock) {
    this.#inner = inner;
    this.#sqlite = sqlite;
    this.#tracker = tracker;
    this.#wal = wal;
    this.#checkpointer = checkpointer;
    this.#lock = lock;
  }

  async #takeLock(): Promise<void> {
    const wait = this.#lock.acquire();
    if (wait) await wait;
    this.#locked = true;
  }

  #releaseLock(): void {
    if (!this.#locked) return;
    this.#locked = false;
    this.#lock.release();
  }

  init(): Promise<void> {
    return this.#inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await this.#inner.acquireConnection();
    let outer = this.#connections.get(inner);
    if (!outer) {
      outer = this.#wrap(inner);
      this.#connections.set(inner, outer);
    }
    return outer;
  }

  #wrap(inner: DatabaseConnection): DatabaseConnection {
    const settle = async (): Promise<void> => {
      this.#tracker.noteExecuted();
      if (this.#tracker.dirty && !this.#sqlite.inTransaction) {
        this.#tracker.dirty = false;
        await this.#wal.flush();
        await this.#checkpointer.committed();
      }
    };
    const execute = async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
      let result: QueryResult<R>;
      try {
        result = await inner.executeQuery<R>(query);
      } catch (err) {
        // A failed statement may still have ended the transaction (SQLITE_FULL rolls it back),
        // and what it wrote before then must not be answered from before a flush.
        await settle();
        throw err;
      }
      await settle();
      return result;
    };
    return {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
        this.#wal.refuseIfFailed();
        // An autocommit statement that may write holds the write lock until its flush returned;
        // a SELECT never needs it (WAL readers do not block the writer, nor it them).
        if (this.#locked || this.#sqlite.inTransaction || isSelect(query.sql)) return execute<R>(query);
        await this.#takeLock();
        try {
          return await execute<R>(query);
        } finally {
          this.#releaseLock();
        }
      },
      streamQuery: <R>(query: CompiledQuery, chunkSize?: number) => {
        this.#wal.refuseIfFailed();
        return inner.streamQuery<R>(query, chunkSize);
      },
    };
  }

  /**
   * Every transaction holds the write lock from BEGIN: a deferred transaction that read before
   * another thread's commit could not write afterwards (./sqlite-write-lock.ts).
   */
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await this.#takeLock();
    try {
      await this.#inner.beginTransaction(connection, settings);
    } catch (err) {
      this.#releaseLock();
      throw err;
    }
  }

  /**
   * A COMMIT that fails may leave the transaction open (a deferred foreign key still violated,
   * https://www.sqlite.org/foreignkeys.html#fk_deferred): the lock is then kept for the rollback
   * that follows, so that no other thread tries to write while this connection still holds
   * SQLite's own write lock (it would sleep in its busy handler). Every transaction here is
   * rolled back after a failed commit: Kysely's `transaction().execute` does it, and so does the
   * group committer's controlled transaction (./group-commit.ts).
   */
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await this.#inner.commitTransaction(connection);
    } finally {
      if (!this.#sqlite.inTransaction) this.#releaseLock();
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await this.#inner.rollbackTransaction(connection);
    } finally {
      this.#releaseLock();
    }
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection(connection);
  }

  async destroy(): Promise<void> {
    await this.#checkpointer.close();
    await this.#wal.close();
    await this.#inner.destroy();
  }
}
