import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';

/**
 * WAL checkpoints of the SQLite store on a thread of their own.
 *
 * SQLite runs an automatic checkpoint inside the COMMIT that takes the WAL past 1,000 pages
 * (https://www.sqlite.org/wal.html#automatic_checkpoint): it copies the WAL into the database file
 * and fsyncs both, on the committing connection. better-sqlite3 runs that on the event loop, which
 * then stands still for milliseconds; under a KV read load those COMMITs were a few in a hundred
 * and made half of all the time spent committing and the reads' p99 (bench/README.md).
 *
 * Once the store has seen some writes (a short-lived test database never gets here), the
 * connection's automatic checkpoints are turned off and a worker with its own connection to the
 * file runs `PRAGMA wal_checkpoint(PASSIVE)` every {@link CHECKPOINT_EVERY_MS}: PASSIVE waits for
 * no reader or writer and copies what no reader still needs. It does not bound the WAL by itself:
 * SQLite starts the WAL over only at a write that finds every frame copied, and under a steady
 * write load commits land while each checkpoint runs, so the WAL would grow for as long as the
 * load lasts. When the worker reports a WAL of more than {@link WAL_DRAIN_FRAMES} frames, the
 * next write that commits keeps the connection (every other request waits for it, as for its
 * flush) until the worker has copied everything; the write after it starts the WAL over, and
 * `journal_size_limit` truncates the file. The event loop stays free meanwhile.
 *
 * Durability is unchanged: a checkpoint only moves committed frames, and the commit path flushes
 * the WAL itself (./sqlite-durable-commit.ts). Should the worker fail or stop, automatic
 * checkpoints are turned back on.
 */
export const CHECKPOINT_EVERY_MS = 100;

/** Write commits after which the worker starts. */
export const CHECKPOINT_WORKER_AFTER_COMMITS = 512;

/** Frames (pages) in the WAL past which a commit waits for a complete checkpoint: 16 MiB of 4 KiB pages. */
export const WAL_DRAIN_FRAMES = 4096;

/** What the WAL file is truncated to when it starts over (`PRAGMA journal_size_limit`). */
export const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

// Runs from source text so that it needs no build output of its own; better-sqlite3 is resolved
// by the parent, where the package is known to be. Messages in: 'drain' (checkpoint now, answer
// 'drained') and 'close'; out: 'behind' when the WAL holds more than the drain limit.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const run = () => {
  try {
    return checkpoint.get();
  } catch (err) {
    if (!/^SQLITE_(BUSY|LOCKED)/.test(String(err.code))) throw err;
    return undefined;
  }
};
const timer = setInterval(() => {
  const r = run();
  if (r && r.log > workerData.drainFrames) parentPort.postMessage('behind');
}, workerData.every);
parentPort.on('message', (message) => {
  if (message === 'drain') {
    run();
    parentPort.postMessage('drained');
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export class WalCheckpointer {
  readonly #sqlite: SqliteDatabase.Database;
  readonly #file: string;
  #commits = 0;
  #worker: Worker | undefined;
  #exited: Promise<void> = Promise.resolve();
  #behind = false;
  #drained: (() => void) | undefined;
  #stopped = false;
  #closing = false;

  constructor(sqlite: SqliteDatabase.Database, file: string) {
    this.#sqlite = sqlite;
    this.#file = file;
    sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  }

  /**
   * Called after each write commit has been flushed, with the connection still held. Resolves at
   * once, or when the worker has copied the whole WAL (see the class comment). Never throws: a
   * checkpointer that cannot start leaves SQLite's automatic checkpoints on.
   */
  committed(): Promise<void> | undefined {
    if (this.#stopped) return undefined;
    if (!this.#worker) {
      if (++this.#commits >= CHECKPOINT_WORKER_AFTER_COMMITS) this.#start();
      return undefined;
    }
    if (!this.#behind) return undefined;
    this.#behind = false;
    const worker = this.#worker;
    // The commit waiting for 'drained' must keep the process alive until it comes.
    worker.ref();
    return new Promise<void>((resolve) => {
      this.#drained = resolve;
      worker.postMessage('drain');
    });
  }

  #start(): void {
    let worker: Worker;
    try {
      const driver = createRequire(import.meta.url).resolve('better-sqlite3');
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file: this.#file, every: CHECKPOINT_EVERY_MS, drainFrames: WAL_DRAIN_FRAMES } });
    } catch {
      this.#stopped = true;
      return;
    }
    this.#worker = worker;
    this.#sqlite.pragma('wal_autocheckpoint = 0');
    worker.on('message', (message: string) => {
      if (message === 'behind') this.#behind = true;
      if (message === 'drained') this.#settleDrain();
    });
    worker.on('error', () => this.#fallBack());
    // After on('message'), which references the worker's port again: a process that never closes
    // the store must still be able to exit.
    worker.unref();
    this.#exited = new Promise((resolve) =>
      worker.once('exit', () => {
        this.#fallBack();
        resolve();
      }),
    );
  }

  #settleDrain(): void {
    const drained = this.#drained;
    this.#drained = undefined;
    if (drained && !this.#closing) this.#worker?.unref();
    drained?.();
  }

  /** The worker is gone: SQLite checkpoints on commit again, and a commit waiting for a drain goes on. */
  #fallBack(): void {
    this.#settleDrain();
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#sqlite.open) this.#sqlite.pragma('wal_autocheckpoint = 1000');
  }

  /**
   * Stops checkpointing for good, without turning automatic checkpoints back on: after a failed
   * flush of the WAL, its frames must not be copied into the database file (the page cache may no
   * longer hold what the disk has).
   */
  halt(): void {
    this.#stopped = true;
    void this.#worker?.terminate();
  }

  async close(): Promise<void> {
    this.#stopped = true;
    this.#closing = true;
    const worker = this.#worker;
    if (!worker) return;
    // Unreferenced while it runs, so that it keeps no process alive; referenced while it stops,
    // or a process with nothing else to do would exit before the worker has closed its connection.
    worker.ref();
    worker.postMessage('close');
    await this.#exited;
  }
}
