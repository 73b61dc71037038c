import { Worker } from 'node:worker_threads';

/**
 * fdatasync(2) on a thread of its own, for the store's WAL flushes (./sqlite-durable-commit.ts).
 *
 * Node's asynchronous fs calls run on libuv's thread pool, four threads shared with every other
 * file system call and with `dns.lookup`: four slow name lookups (a SIEM webhook or syslog host
 * whose resolver does not answer, a database engine's target) would hold every commit of the
 * store, and with it every audited request, which is the "blocked audit device stalls everything"
 * failure the secrets issue names. This thread does nothing else.
 *
 * The two threads talk through shared memory, without messages: the event loop bumps a request
 * counter and waits for the done counter with `Atomics.waitAsync` (a promise, so the loop is not
 * blocked); the thread sleeps in `Atomics.wait`, flushes once for every request made since its
 * last flush, and publishes the request number it flushed for. A flush covers every write before
 * it, so one fdatasync answers all requests that were waiting.
 */

// Int32 slots of the shared array.
const REQUESTED = 0;
const DONE = 1;
const ERRNO = 2;
const STOP = 3;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { fdatasyncSync } = require('node:fs');
const state = new Int32Array(workerData.shared);
let flushed = workerData.startAt;
for (;;) {
  Atomics.wait(state, ${REQUESTED}, flushed);
  if (Atomics.load(state, ${STOP}) === 1) break;
  const upTo = Atomics.load(state, ${REQUESTED});
  let errno = 0;
  try {
    fdatasyncSync(workerData.fd);
  } catch (err) {
    errno = typeof err.errno === 'number' ? -Math.abs(err.errno) || -5 : -5;
  }
  if (errno !== 0) Atomics.store(state, ${ERRNO}, errno);
  flushed = upTo;
  Atomics.store(state, ${DONE}, upTo);
  Atomics.notify(state, ${DONE});
}
`;

/** Whether counter `done` has reached `ticket`, both int32 counters that wrap. */
function reached(done: number, ticket: number): boolean {
  return ((done - ticket) | 0) >= 0;
}

export class WalFlushThread {
  readonly #state: Int32Array;
  readonly #worker: Worker;
  #requested = 0;
  #waiting = 0;
  #closing = false;
  #failure: Error | undefined;

  /** `startAt` is the counters' first value, for tests of their wrapping. */
  constructor(fd: number, startAt = 0) {
    this.#state = new Int32Array(new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT));
    this.#requested = startAt | 0;
    this.#state[REQUESTED] = this.#requested;
    this.#state[DONE] = this.#requested;
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { shared: this.#state.buffer, fd, startAt: this.#requested } });
    this.#worker.unref();
    const fail = (err: Error): void => {
      this.#failure ??= err;
      // Wakes every flush still waiting: they see the failure.
      Atomics.store(this.#state, DONE, this.#requested);
      Atomics.notify(this.#state, DONE);
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', () => fail(new Error('the WAL flush thread stopped')));
  }

  /** Resolves once every write made before the call is on disk; rejects with the errno of a failed flush. */
  async flush(): Promise<void> {
    if (this.#failure) throw this.#failure;
    const ticket = this.#next();
    Atomics.store(this.#state, REQUESTED, ticket);
    Atomics.notify(this.#state, REQUESTED);
    // A pending Atomics.waitAsync keeps no process alive: the thread does, while anyone waits.
    if (this.#waiting++ === 0) this.#worker.ref();
    try {
      for (;;) {
        const done = Atomics.load(this.#state, DONE);
        if (reached(done, ticket)) break;
        const wait = Atomics.waitAsync(this.#state, DONE, done);
        if (wait.async) await wait.value;
      }
    } finally {
      // Not while closing: close() holds its own reference until the thread has stopped.
      if (--this.#waiting === 0 && !this.#closing) this.#worker.unref();
    }
    if (this.#failure) throw this.#failure;
    const errno = Atomics.load(this.#state, ERRNO);
    if (errno !== 0) throw Object.assign(new Error(`fdatasync failed (errno ${errno})`), { errno });
  }

  /** The next request number. The counters are int32 and wrap (after 2^31 flushes, days at full load). */
  #next(): number {
    this.#requested = (this.#requested + 1) | 0;
    return this.#requested;
  }

  /** Stops the thread; flushes still waiting fail. */
  async close(): Promise<void> {
    this.#closing = true;
    Atomics.store(this.#state, STOP, 1);
    Atomics.store(this.#state, REQUESTED, this.#next());
    Atomics.notify(this.#state, REQUESTED);
    this.#worker.ref();
    await this.#worker.terminate().catch(() => undefined);
  }
}
