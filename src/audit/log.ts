import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Clock } from '../core/clock.js';
import { AuditError } from '../core/errors.js';
import { type AuditEvent, serializeEvent } from './event.js';
import { MAX_FIELD_CHARS, requireEntrySize } from './event-bounds.js';
import { integratePendingIn } from './integration.js';
import { type EventIndexFields, indexFieldsOf } from './query.js';
import type { AuditStore } from './store.js';

export interface AuditLogOptions {
  readonly store: AuditStore;
  readonly clock: Clock;
  /** Events waiting for their batch before appends are refused with `audit.pushback`. */
  readonly maxPending?: number;
  /** Events written in one INSERT. */
  readonly maxBatch?: number;
  /** Rows integrated into the tree per transaction. */
  readonly integrateBatch?: number;
  /** Called once per durable append, for metrics. */
  readonly onAppend?: (count: number, ok: boolean) => void;
  /** Called after each batch that integrated entries (the checkpointer signs the new head). */
  readonly onIntegrated?: (count: number) => void;
  /**
   * Integrates up to `limit` pending rows, stamped `at`, and returns how many it integrated: for
   * a store that integrates on a thread of its own (src/store/sqlite-audit-thread.ts). By default
   * the batch is computed here, by `integrationOf` (./integration.ts) in the store's transaction.
   */
  readonly integrator?: (limit: number, at: string) => Promise<number>;
}

interface Waiter {
  readonly row: AuditRow;
  resolve(): void;
  reject(err: unknown): void;
}

export interface AuditRow {
  readonly tenant: string;
  readonly recordedAt: string;
  readonly payload: string;
  readonly index: EventIndexFields;
}

/**
 * Rows integrated per transaction. A batch holds the event loop for its hashing and, on SQLite,
 * for its UPDATEs and its COMMIT's fsync: about 20 µs of CPU per row, so 256 rows pause requests
 * for about 5 ms plus one fsync (the request path's p99 budget), where fewer rows per batch would
 * pay that fsync and the tree state, node and head writes more often.
 */
const DEFAULT_INTEGRATE_BATCH = 256;

/**
 * The indexed columns of a stored event, from the event itself rather than by parsing its payload
 * again. They are the payload's own values: event-bounds.ts, when it shortens an oversized event,
 * changes only strings longer than MAX_FIELD_CHARS, and for an event with such an indexed string
 * the payload is parsed instead, so the columns always match what is stored.
 */
function indexFieldsOfStored(event: AuditEvent, payload: string): EventIndexFields {
  const principalId = event.principal?.id;
  const resourceId = event.resource?.id;
  const long = (s: string | null | undefined): boolean => s !== null && s !== undefined && s.length > MAX_FIELD_CHARS;
  if (long(event.time) || long(principalId) || long(event.action) || long(resourceId)) return indexFieldsOf(payload);
  return { eventTime: event.time, principalId: indexable(principalId), action: indexable(event.action), resource: indexable(resourceId), outcome: event.outcome };
}

/** As query.ts stores an id: PostgreSQL text cannot hold U+0000, the indexed copy gets U+FFFD. */
function indexable(value: string | null | undefined): string | null {
  return typeof value === 'string' ? value.replaceAll('\u0000', '\uFFFD') : null;
}

/**
 * The append side of the audit log.
 *
 * Appends are group-committed: concurrent requests' events share one INSERT, and each caller's
 * promise settles only after that INSERT is durable, so no request is answered before its event
 * is on disk (fail closed). Integration into the RFC 6962 tree is asynchronous, as in Tessera:
 * rows get their leaf index and hash in insertion order under the sequencer lock, which keeps
 * the request path free of the tree's serialization point.
 */
export class AuditLog {
  readonly #store: AuditStore;
  readonly #clock: Clock;
  readonly #maxPending: number;
  readonly #maxBatch: number;
  readonly #integrateBatch: number;
  readonly #onAppend: ((count: number, ok: boolean) => void) | undefined;
  readonly #onIntegrated: ((count: number) => void) | undefined;
  readonly #integrator: (limit: number, at: string) => Promise<number>;
  #queue: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #integrating: Promise<number> | undefined;

  constructor(options: AuditLogOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#maxPending = options.maxPending ?? 10_000;
    this.#maxBatch = options.maxBatch ?? 512;
    this.#integrateBatch = options.integrateBatch ?? DEFAULT_INTEGRATE_BATCH;
    this.#onAppend = options.onAppend;
    this.#onIntegrated = options.onIntegrated;
    const store = this.#store;
    this.#integrator = options.integrator ?? ((limit, at) => integratePendingIn(store, limit, at));
  }

  /** The row an event is stored as; used to write an event inside a caller's own transaction. */
  rowFor(event: AuditEvent): AuditRow {
    const payload = serializeEvent(event);
    requireEntrySize(payload);
    return { tenant: event.tenant, recordedAt: this.#clock.now().toISOString(), payload, index: indexFieldsOfStored(event, payload) };
  }

  /**
   * Appends one event; resolves once it is durable. Rejects with `audit.pushback` when too many
   * events are waiting (answer 503 with Retry-After) and with `audit.write_failed` when the store
   * refused the write. Either way the caller must not report success.
   */
  append(event: AuditEvent): Promise<void> {
    if (this.#queue.length >= this.#maxPending) {
      return Promise.reject(new AuditError('audit.pushback', 'too many audit events are waiting to be written'));
    }
    let row: AuditRow;
    try {
      row = this.rowFor(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ row, resolve, reject });
      this.#scheduleFlush();
    });
  }

  /** Called after a caller wrote rows in its own transaction. */
  recordCommitted(count: number): void {
    this.#onAppend?.(count, true);
  }

  #scheduleFlush(): void {
    if (this.#flushing) return;
    this.#flushing = new Promise<void>((done) => setImmediate(() => void this.#drain().finally(done))).then(() => {
      this.#flushing = undefined;
      if (this.#queue.length > 0) this.#scheduleFlush();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        await this.#store.insert(batch.map((w) => w.row));
        this.#onAppend?.(batch.length, true);
        for (const w of batch) w.resolve();
      } catch (err) {
        this.#onAppend?.(batch.length, false);
        const failure = new AuditError('audit.write_failed', 'the audit log could not be written', { cause: err });
        for (const w of batch) w.reject(failure);
      }
    }
  }

  /** Waits until every event appended so far is durable (or failed). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /**
   * Integrates up to one batch of pending rows into the Merkle tree (./integration.ts) and
   * returns how many were integrated. The interior nodes the batch completes are stored with it,
   * so proofs never recompute them.
   */
  integrate(): Promise<number> {
    // One integration at a time per process; the store's lock serializes replicas.
    this.#integrating ??= this.#integrator(this.#integrateBatch, this.#clock.now().toISOString())
      .then((n) => {
        if (n > 0) this.#onIntegrated?.(n);
        return n;
      })
      .finally(() => {
        this.#integrating = undefined;
      });
    return this.#integrating;
  }

  /**
   * Integrates until nothing is pending. Each batch runs synchronously on SQLite (hashing, then
   * better-sqlite3), so the loop yields to the event loop between batches: requests that arrived
   * meanwhile are served after one batch, not after the whole backlog.
   */
  async integrateAll(): Promise<void> {
    while ((await this.integrate()) > 0) await nextTurn();
  }

  /**
   * Integrates the backlog in whole batches and stops at the first partial one, which means it
   * has caught up: what is appended meanwhile waits for the next call. Chasing every new row
   * instead (as {@link integrateAll} does) ran, under a steady load, one small integration
   * transaction per turn of the event loop (190/s of 39 rows each at 9,000 KV reads/s), each
   * with its own statements, COMMIT and WAL flush; taking whole batches raised kv-read
   * throughput by about 8 % (bench/README.md). An entry waits at most one interval longer, the
   * wait it already had when the log was idle.
   */
  async integrateBacklog(): Promise<void> {
    while ((await this.integrate()) >= this.#integrateBatch) await nextTurn();
  }

  /** Starts background integration every `intervalMs`; errors are reported, never thrown. */
  startIntegrator(intervalMs: number, onError: (err: unknown) => void): void {
    this.stopIntegrator();
    this.#timer = setInterval(() => {
      this.integrateBacklog().catch(onError);
    }, intervalMs);
    this.#timer.unref();
  }

  stopIntegrator(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the integrator and writes out everything still queued, then integrates it. */
  async close(): Promise<void> {
    this.stopIntegrator();
    await this.flush();
    if (this.#integrating) await this.#integrating.catch(() => 0);
    await this.integrateAll();
  }
}
