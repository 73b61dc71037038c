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
 * no reader or writer, and copies what no reader still needs. The writer restarts the WAL from its
 * start once a checkpoint has copied all of it, so the file stops growing as before. Durability
 * is unchanged: a checkpoint only moves committed frames, and the commit path flushes the WAL
 * itself (./sqlite-durable-commit.ts). Should the worker die, automatic checkpoints are turned
 * back on.
 */
export const CHECKPOINT_EVERY_MS = 100;

/** Write commits after which the worker starts. */
export const CHECKPOINT_WORKER_AFTER_COMMITS = 512;

// Runs from source text so that it needs no build output of its own; better-sqlite3 is resolved
// by the parent, where the package is known to be.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const timer = setInterval(() => {
  try {
    checkpoint.run();
  } catch (err) {
    if (!/^SQLITE_(BUSY|LOCKED)/.test(String(err.code))) throw err;
  }
}, workerData.every);
parentPort.on('message', () => {
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
  #closed = false;

  constructor(sqlite: SqliteDatabase.Database, file: string) {
    this.#sqlite = sqlite;
    this.#file = file;
  }

  /** Called after each write commit. */
  committed(): void {
    if (this.#worker || this.#closed || ++this.#commits < CHECKPOINT_WORKER_AFTER_COMMITS) return;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file: this.#file, every: CHECKPOINT_EVERY_MS } });
    worker.unref();
    this.#worker = worker;
    this.#sqlite.pragma('wal_autocheckpoint = 0');
    const fallBack = (): void => {
      if (this.#closed || !this.#sqlite.open) return;
      this.#sqlite.pragma('wal_autocheckpoint = 1000');
    };
    worker.on('error', fallBack);
    this.#exited = new Promise((resolve) =>
      worker.once('exit', () => {
        fallBack();
        resolve();
      }),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    if (!worker) return;
    // Unreferenced while it runs, so that it keeps no process alive; referenced while it stops,
    // or a process with nothing else to do would exit before the worker has closed its connection.
    worker.ref();
    worker.postMessage('close');
    await this.#exited;
  }
}
