import { Worker } from 'node:worker_threads';
import { type RangeExtender, storeExtender } from '../audit/checkpointer.js';
import { integratePendingIn } from '../audit/integration.js';
import { CompactRange } from '../audit/merkle.js';
import type { AuditStore } from '../audit/store.js';
import { AuditError, ERROR_CODES, RampartError, StoreError } from '../core/errors.js';
import { WORKER, type WriteLock } from './sqlite-write-lock.js';
import type { AuditThreadReply, AuditThreadRequest } from './sqlite-audit-worker.js';

/**
 * The audit log's tree work on a thread of its own, for a SQLite file store.
 *
 * Integrating a row (reading it back, hashing it, writing its leaf index and hash, the interior
 * nodes and the tree head) and checking it again before a checkpoint is signed (re-reading and
 * re-hashing it) cost, on the event loop, about a fifth of a KV read's time, and they came in
 * batches that held the loop for milliseconds: the tail of the request path's latency
 * (bench/README.md). Here a worker with its own connection to the file does both. The event loop
 * keeps what must stay with the request: appending the event, durably, before the answer
 * (src/audit/log.ts). The signing key stays there too; the worker only reports the compact range
 * it computed, and the event loop signs.
 *
 * The two connections write to one file, so both take the store's write lock first
 * (./sqlite-write-lock.ts). The worker hashes each small batch before it takes the lock and holds
 * it for the batch's writes only, so an append seldom waits for it, and briefly
 * (./sqlite-audit-worker.ts has the batch size, and says why its commits need no fsync).
 *
 * The thread starts once `startAfter` entries were integrated on the event loop, as the WAL
 * checkpointer does (a short-lived database never needs it). Should it fail to start or stop,
 * the work is done on the event loop again: the results are the same, since integration is a
 * pure function of the stored rows (src/audit/integration.ts).
 */
export interface SqliteAuditThreadOptions {
  readonly path: string;
  readonly writeLock: WriteLock;
  /** The store on the event loop's connection, for the work done there. */
  readonly store: AuditStore;
  /** Entries integrated on the event loop before the thread starts; 0 starts it at once. */
  readonly startAfter?: number;
  /** Told once if the thread cannot start or stops; the work goes on on the event loop. */
  readonly onStopped?: (err: unknown) => void;
}

export const DEFAULT_START_AFTER = 4096;

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type Answer = Exclude<AuditThreadReply, { error: string }>;

type Pending = { resolve(reply: Answer): void; reject(err: Error): void };

/**
 * The worker's failure as an error of the same code and class (`store.unavailable` when it had
 * none): the worker's work throws only store and audit errors.
 */
function threadFailure(reply: Extract<AuditThreadReply, { error: string }>): RampartError {
  const message = `the audit thread failed: ${reply.error}`;
  const options = reply.details ? { details: reply.details } : {};
  const code = reply.code !== undefined && Object.hasOwn(ERROR_CODES, reply.code) ? reply.code : 'store.unavailable';
  if (code.startsWith('store.')) return new StoreError(code as StoreError['code'], message, options);
  if (code.startsWith('audit.')) return new AuditError(code as AuditError['code'], message, options);
  return new RampartError(code, message, options);
}

const outOfTurn = (): StoreError => new StoreError('store.unavailable', 'the audit thread answered out of turn');

export class SqliteAuditThread {
  readonly #options: SqliteAuditThreadOptions;
  readonly #onEventLoop: RangeExtender;
  #integratedHere = 0;
  #worker: Worker | undefined;
  #stopped = false;
  #closing = false;
  #exited: Promise<void> = Promise.resolve();
  #next = 0;
  readonly #pending = new Map<number, Pending>();

  constructor(options: SqliteAuditThreadOptions) {
    this.#options = options;
    this.#onEventLoop = storeExtender(options.store);
    if ((options.startAfter ?? DEFAULT_START_AFTER) <= 0) this.#start();
  }

  /** Whether the work runs on the worker (for tests and metrics). */
  get running(): boolean {
    return this.#worker !== undefined && !this.#stopped;
  }

  /** For AuditLog's `integrator`: integrates up to `limit` pending rows stamped `at`. */
  readonly integrate = async (limit: number, at: string): Promise<number> => {
    if (this.running) {
      const reply = await this.#callOrStop({ op: 'integrate', limit, at });
      if (reply && 'count' in reply) return reply.count;
      if (reply) throw outOfTurn();
    }
    const n = await integratePendingIn(this.#options.store, limit, at);
    this.#integratedHere += n;
    if (!this.#stopped && !this.#worker && this.#integratedHere >= (this.#options.startAfter ?? DEFAULT_START_AFTER)) this.#start();
    return n;
  };

  /** For the Checkpointer's `extend`: the check of the new leaves, on the worker when it runs. */
  readonly extend: RangeExtender = async (range, size) => {
    const reply = this.running ? await this.#callOrStop({ op: 'extend', frontier: JSON.stringify(range.toJSON()), size }) : undefined;
    if (!reply) return this.#onEventLoop(range, size);
    if ('bad' in reply) return { bad: reply.bad };
    if ('frontier' in reply) return { range: CompactRange.fromJSON(JSON.parse(reply.frontier)) };
    throw outOfTurn();
  };

  /**
   * The worker's answer, or undefined when it stopped before answering: the caller then does
   * the work here. Both requests may be done twice safely: integration takes only rows still
   * pending, in a transaction that a stopped worker's connection rolled back or committed whole,
   * and the check only reads.
   */
  async #callOrStop(request: WithoutId<AuditThreadRequest>): Promise<Answer | undefined> {
    try {
      return await this.#call(request);
    } catch (err) {
      if (this.#stopped) return undefined;
      throw err;
    }
  }

  #start(): void {
    let worker: Worker;
    try {
      worker = new Worker(bootSource(), { eval: true, workerData: { path: this.#options.path, lock: this.#options.writeLock.buffer } });
    } catch (err) {
      this.#stop(err);
      return;
    }
    this.#worker = worker;
    worker.on('message', (reply: AuditThreadReply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      // Not while closing: close() holds its own reference until the worker has exited.
      if (this.#pending.size === 0 && !this.#closing) worker.unref();
      if (!pending) return;
      if ('error' in reply) pending.reject(threadFailure(reply));
      else pending.resolve(reply);
    });
    worker.on('error', (err) => this.#stop(err));
    this.#exited = new Promise((resolve) =>
      worker.once('exit', () => {
        this.#stop(new Error('the audit thread stopped'));
        resolve();
      }),
    );
    // After on('message'), which references the worker again: an idle thread keeps no process alive.
    worker.unref();
  }

  /** The worker is gone: what it held is released, what waited for it fails, and the work goes on here. */
  #stop(err: unknown): void {
    this.#options.writeLock.releaseHeldBy(WORKER);
    const failure = new StoreError('store.unavailable', 'the audit thread stopped', { cause: err });
    for (const p of this.#pending.values()) p.reject(failure);
    this.#pending.clear();
    if (this.#stopped) return;
    this.#stopped = true;
    this.#options.onStopped?.(err);
  }

  #call(request: WithoutId<AuditThreadRequest>): Promise<Answer> {
    const worker = this.#worker!;
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // A reply still due keeps the process alive; an idle worker does not.
      if (this.#pending.size === 1) worker.ref();
      worker.postMessage({ ...request, id });
    });
  }

  /** Stops the thread after the work already sent to it. */
  async close(): Promise<void> {
    const worker = this.#worker;
    const stopped = this.#stopped;
    // A thread not started yet never starts now.
    this.#stopped = true;
    if (!worker || stopped) return;
    this.#closing = true;
    worker.ref();
    worker.postMessage({ op: 'close' });
    await this.#exited;
  }
}

/**
 * The worker runs the compiled module next to this one; from TypeScript sources (tsx, vitest) it
 * first registers tsx, whose loader a worker does not inherit on Node 20.
 */
function bootSource(): string {
  const self = import.meta.url;
  const typescript = self.endsWith('.ts');
  const entry = JSON.stringify(new URL(`./sqlite-audit-worker.${typescript ? 'ts' : 'js'}`, self).href);
  if (!typescript) return `import(${entry});`;
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return `import(${tsx}).then((tsx) => { tsx.register(); return import(${entry}); });`;
}
