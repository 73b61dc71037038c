/**
 * One writer at a time on a SQLite file shared by the event loop and a worker thread
 * (./sqlite-audit-thread.ts), without SQLite's busy handler.
 *
 * SQLite admits one writer per database file (https://www.sqlite.org/wal.html#concurrency): a
 * second connection that wants to write while another holds the write lock gets SQLITE_BUSY,
 * and its busy handler retries by sleeping, at least a millisecond each time. better-sqlite3 runs
 * that sleep on the calling thread, which on the event loop holds every request. Worse, a deferred
 * transaction that read before another connection committed cannot write at all
 * (SQLITE_BUSY_SNAPSHOT, which no retry resolves). So both threads take this lock before they
 * begin a transaction or run a statement that may write, and the event loop waits for it with
 * `Atomics.waitAsync`: a promise, so other requests go on meanwhile.
 *
 * The event loop comes first: a worker that finds it waiting lets it in before taking the lock
 * again, so a worker working through a backlog in many short transactions cannot keep a
 * request's write waiting for the whole backlog.
 *
 * The lock also carries the store's failure: once a flush of the WAL failed, the event loop's
 * connection refuses everything (./sqlite-durable-commit.ts), and {@link WriteLock.fail} makes
 * the worker refuse to write too, since nothing written after that failure can be trusted to
 * reach the disk.
 */

import { StoreError } from '../core/errors.js';

// Int32 slots of the shared array.
const OWNER = 0;
const LOOP_WAITING = 1;
const FAILED = 2;
const SLOTS = 3;

const FREE = 0;
/** Who holds the lock. */
export const LOOP = 1;
export const WORKER = 2;

/**
 * How long a worker waits for a waiting event loop to take the lock before it looks again
 * (milliseconds). The loop takes it at its next turn; the bound only matters if it never comes.
 */
const YIELD_MS = 5;
/**
 * How long a worker waits for a held lock before it looks again (milliseconds). A release wakes
 * it at once; the bound is for a {@link WriteLock.fail failure} marked between its check and its
 * wait, whose wake-up it would otherwise miss until the holder's release.
 */
const HELD_MS = 50;

export class WriteLock {
  readonly #state: Int32Array;

  /** A new lock, or (in the worker) the one whose `buffer` the event loop handed over. */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT)) {
    this.#state = new Int32Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.#state.buffer as SharedArrayBuffer;
  }

  /**
   * For the event loop: undefined when the lock was free and is now held, else a promise that
   * resolves once it is held. Never blocks the thread.
   */
  acquire(): Promise<void> | undefined {
    if (Atomics.compareExchange(this.#state, OWNER, FREE, LOOP) === FREE) return undefined;
    return this.#wait();
  }

  async #wait(): Promise<void> {
    Atomics.add(this.#state, LOOP_WAITING, 1);
    try {
      for (;;) {
        const owner = Atomics.compareExchange(this.#state, OWNER, FREE, LOOP);
        if (owner === FREE) return;
        const wait = Atomics.waitAsync(this.#state, OWNER, owner);
        if (wait.async) await wait.value;
      }
    } finally {
      Atomics.sub(this.#state, LOOP_WAITING, 1);
    }
  }

  /**
   * For a worker: blocks its thread until the lock is held, letting a waiting event loop go first.
   * Throws `store.unavailable` once the store {@link WriteLock.fail failed}, before or while it waits.
   */
  acquireBlocking(): void {
    for (;;) {
      this.#refuseIfFailed();
      if (Atomics.load(this.#state, LOOP_WAITING) === 0 && Atomics.compareExchange(this.#state, OWNER, FREE, WORKER) === FREE) {
        // The failure may have been marked between the check above and the exchange.
        if (!this.failed) return;
        this.release();
        continue;
      }
      const owner = Atomics.load(this.#state, OWNER);
      Atomics.wait(this.#state, OWNER, owner, owner === FREE ? YIELD_MS : HELD_MS);
    }
  }

  /**
   * Marks the store failed for every thread sharing the lock, and wakes a worker waiting for it so
   * that it sees the failure. Never undone: the process has to restart.
   */
  fail(): void {
    Atomics.store(this.#state, FAILED, 1);
    Atomics.notify(this.#state, OWNER);
  }

  get failed(): boolean {
    return Atomics.load(this.#state, FAILED) !== 0;
  }

  #refuseIfFailed(): void {
    if (this.failed) throw new StoreError('store.unavailable', 'an earlier flush of the SQLite WAL failed; the store refuses writes until the process restarts');
  }

  release(): void {
    Atomics.store(this.#state, OWNER, FREE);
    Atomics.notify(this.#state, OWNER);
  }

  /** Frees the lock if `owner` holds it: for a worker that stopped while holding it. */
  releaseHeldBy(owner: typeof LOOP | typeof WORKER): void {
    if (Atomics.compareExchange(this.#state, OWNER, owner, FREE) === owner) Atomics.notify(this.#state, OWNER);
  }
}
