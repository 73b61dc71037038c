import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from '../../audit/event.js';
import type { Clock } from '../../core/clock.js';
import type { LeaseRecord } from './lease.js';
import type { LeaseManager } from './lease-manager.js';
import type { ExpiryLock, LeaseStore, LeaseTransact } from './store.js';

export interface LeaseExpiryOptions {
  /** The non-transactional store: the due-list query. */
  readonly store: LeaseStore;
  readonly transact: LeaseTransact;
  readonly lock: ExpiryLock;
  readonly manager: Pick<LeaseManager<never>, 'revokeBatch'>;
  readonly clock: Clock;
  /** The stored form of an audit event (the audit log's `rowFor`). */
  readonly auditRow: (event: AuditEvent) => { tenant: string; recordedAt: string; payload: string };
  /**
   * Leases per batch: one due-list query and one transaction each. Default 50: a batch's store
   * transaction (a delete and an audit row per lease, then the fsync) runs on the event loop, and
   * at 250 it held reads up long enough to more than double their p99 (bench/secrets-leases.ts).
   */
  readonly batchSize?: number;
  /** Batches per pass, so a pass is bounded (default 200: 10,000 leases); the next pass continues. */
  readonly maxBatchesPerPass?: number;
  /** External revocations in flight at once. */
  readonly concurrency?: number;
  /**
   * A revocation failed (it is retried with backoff): the alert hook for the log and the metric.
   * Its audit event is already written.
   */
  readonly onAlert?: (lease: LeaseRecord, err: unknown, attempts: number) => void;
  /** After each batch, the number of leases revoked and audit rows committed. */
  readonly onRevoked?: (count: number) => void;
  readonly onError?: (err: unknown) => void;
  /** While true (the secrets barrier is sealed), passes do nothing: no lease can be opened. */
  readonly paused?: () => boolean;
}

/** What one pass did. */
export interface ExpiryPass {
  readonly revoked: number;
  readonly failed: number;
  /** Why it stopped: nothing more is due, the batch cap, another replica holds the lock, or sealed. */
  readonly stopped: 'done' | 'cap' | 'busy' | 'paused';
}

/**
 * Revokes expired leases on time, exactly once across replicas (see {@link ExpiryLock}), in
 * bounded batches with a bounded number of external calls in flight, yielding to the event loop
 * between batches, so 100,000 leases expiring at once never stall request handling.
 *
 * A lease whose revocation fails stays, with its attempt count and the next retry time
 * (exponential backoff, {@link revokeRetryDelayMs}); each failure is an alert: an audit event
 * (`secrets:lease-revoke`, outcome `failed`), plus `onAlert` for the log and the metric.
 */
export class LeaseExpiry {
  readonly #o: LeaseExpiryOptions;
  readonly #batchSize: number;
  readonly #maxBatches: number;
  readonly #concurrency: number;
  #running: Promise<ExpiryPass> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: LeaseExpiryOptions) {
    this.#o = options;
    this.#batchSize = options.batchSize ?? 50;
    this.#maxBatches = options.maxBatchesPerPass ?? 200;
    this.#concurrency = options.concurrency ?? 8;
  }

  /** One pass over what is due now. Passes never overlap within a process. */
  tick(): Promise<ExpiryPass> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<ExpiryPass> {
    if (this.#o.paused?.()) return { revoked: 0, failed: 0, stopped: 'paused' };
    const outcome = await this.#o.lock.run(async () => {
      let revoked = 0;
      let failed = 0;
      for (let batch = 0; batch < this.#maxBatches; batch++) {
        const due = await this.#o.store.due(this.#o.clock.now().toISOString(), this.#batchSize);
        if (due.length === 0) return { revoked, failed, stopped: 'done' as const };
        const result = await this.#revokeBatch(due);
        revoked += result.revoked;
        failed += result.failed;
        if (due.length < this.#batchSize) return { revoked, failed, stopped: 'done' as const };
        await yieldToEventLoop();
      }
      return { revoked, failed, stopped: 'cap' as const };
    });
    return outcome === 'busy' ? { revoked: 0, failed: 0, stopped: 'busy' } : outcome;
  }

  async #revokeBatch(due: readonly LeaseRecord[]): Promise<{ revoked: number; failed: number }> {
    const { done, failures } = await this.#o.manager.revokeBatch(due, this.#concurrency);

    const events = [
      ...done.map((lease) => this.#event(lease, 'success', null, lease.revokeAttempts)),
      ...failures.map(({ lease }) => this.#event(lease, 'failed', 'lease.revoke_failed', lease.revokeAttempts + 1)),
    ];
    await this.#o.transact(async (s) => {
      for (const lease of done) await s.leases.delete(lease.tenant, lease.leaseId);
      await s.audit.insert(events.map((e) => this.#o.auditRow(e)));
    });
    this.#o.onRevoked?.(events.length);
    for (const { lease, err } of failures) this.#o.onAlert?.(lease, err, lease.revokeAttempts + 1);
    return { revoked: done.length, failed: failures.length };
  }

  #event(lease: LeaseRecord, outcome: 'success' | 'failed', errorCode: string | null, attempts: number): AuditEvent {
    return {
      schema_version: AUDIT_SCHEMA_VERSION,
      time: this.#o.clock.now().toISOString(),
      tenant: lease.tenant,
      request_id: 'lease-expiry',
      source_ip: '',
      principal: null,
      action: 'secrets:lease-revoke',
      resource: { type: 'Rampart::Lease', id: lease.leaseId },
      outcome,
      authorization: null,
      error_code: errorCode,
      http: null,
      details: { lease_id: lease.leaseId, engine: lease.engine, mount: lease.mount, expired_at: lease.expiresAt, attempts },
    };
  }

  /** Runs a pass every `intervalMs`; errors go to `onError`, never thrown. */
  start(intervalMs: number): void {
    this.#stopTimer();
    this.#timer = setInterval(() => this.notify(), intervalMs);
    this.#timer.unref();
  }

  /** Starts a pass now (after `sys/leases/revoke-prefix`, say) without waiting for it. */
  notify(): void {
    this.tick().catch((err) => this.#o.onError?.(err));
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the schedule and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.#stopTimer();
    await this.#running?.catch(() => undefined);
  }
}
