/**
 * Audit retention: payloads older than the retention period are pruned, the tree is not.
 *
 * A pruned row keeps its leaf index and leaf hash and loses its payload (and the query columns
 * copied from it), so every checkpoint, inclusion and consistency proof stays valid: they cover
 * leaf hashes, never payloads. What is lost is the ability to re-hash that entry's content.
 *
 * A row is pruned only when all of these hold (docs/audit.md "Retention"):
 * - it is integrated (has a leaf index) and a signed checkpoint covers it: the checkpointer
 *   re-hashes the payloads above the latest checkpoint, so those must stay;
 * - it was recorded more than the retention period ago (by the injected clock);
 * - every configured SIEM sink has delivered it (leaf index below each sink's durable cursor;
 *   a sink that never delivered has cursor 0): a sink never meets a pruned payload, and an event
 *   not yet delivered is never lost;
 * - no legal hold is on. The hold is read in the same transaction as the prune, so once
 *   `POST /v1/audit/legal-hold` has answered, no further row is pruned until it is released.
 *
 * Pruning runs in bounded batches (one transaction each) so it never holds the table for long;
 * of several replicas on PostgreSQL one prunes at a time (an advisory lock), the others skip.
 */

import type { Clock } from '../core/clock.js';
import type { PruneStore } from './retention-store.js';

export interface AuditPrunerOptions {
  readonly store: PruneStore;
  readonly clock: Clock;
  /** Payloads recorded longer ago than this many milliseconds may be pruned. */
  readonly retentionMs: number;
  /** The names of the configured SIEM sinks; their cursors bound pruning. */
  readonly sinkNames: readonly string[];
  /** Rows per transaction. */
  readonly batchSize?: number;
  /** At most this many batches per run, so one run is bounded too; the next run continues. */
  readonly maxBatchesPerRun?: number;
  readonly onError?: (err: unknown) => void;
  /** Called after each run that pruned something, for metrics and logs. */
  readonly onPruned?: (count: number) => void;
}

/** What one run did. */
export interface PruneRun {
  readonly pruned: number;
  /** Why it stopped: nothing more is due, the batch cap, a legal hold, or another replica pruning. */
  readonly stopped: 'done' | 'cap' | 'held' | 'busy';
}

export class AuditPruner {
  readonly #store: PruneStore;
  readonly #clock: Clock;
  readonly #retentionMs: number;
  readonly #sinkNames: readonly string[];
  readonly #batchSize: number;
  readonly #maxBatches: number;
  readonly #onError: (err: unknown) => void;
  readonly #onPruned: ((count: number) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PruneRun> | undefined;

  constructor(options: AuditPrunerOptions) {
    if (!Number.isSafeInteger(options.retentionMs) || options.retentionMs <= 0) throw new RangeError(`retention must be a positive number of milliseconds (got ${options.retentionMs})`);
    this.#store = options.store;
    this.#clock = options.clock;
    this.#retentionMs = options.retentionMs;
    this.#sinkNames = [...options.sinkNames];
    this.#batchSize = options.batchSize ?? 500;
    this.#maxBatches = options.maxBatchesPerRun ?? 100;
    this.#onError = options.onError ?? (() => undefined);
    this.#onPruned = options.onPruned;
  }

  /** Prunes what is due now, batch by batch, up to the per-run cap. Runs do not overlap. */
  prune(): Promise<PruneRun> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<PruneRun> {
    let pruned = 0;
    for (let batches = 0; batches < this.#maxBatches; batches++) {
      const now = this.#clock.now();
      const outcome = await this.#store.pruneBatch({
        recordedBefore: new Date(now.getTime() - this.#retentionMs).toISOString(),
        sinkNames: this.#sinkNames,
        limit: this.#batchSize,
        at: now.toISOString(),
      });
      if (outcome.kind !== 'pruned') return this.#done(pruned, outcome.kind);
      pruned += outcome.pruned;
      if (outcome.pruned < this.#batchSize) return this.#done(pruned, 'done');
    }
    return this.#done(pruned, 'cap');
  }

  #done(pruned: number, stopped: PruneRun['stopped']): PruneRun {
    if (pruned > 0) this.#onPruned?.(pruned);
    return { pruned, stopped };
  }

  /** Runs `prune` every `intervalMs`; errors go to `onError`, never thrown. */
  start(intervalMs: number): void {
    this.stop();
    this.#timer = setInterval(() => {
      this.prune().catch(this.#onError);
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }
}
