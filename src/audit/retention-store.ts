/**
 * The storage audit retention needs, and nothing more: the legal hold, and pruning one bounded
 * batch of old payloads under the pruner lock (src/audit/pruner.ts).
 */

/** The legal hold as stored. While `enabled`, nothing is pruned. */
export interface LegalHold {
  readonly enabled: boolean;
  /** Why it was placed or released; '' before the first change. */
  readonly reason: string;
  /** RFC 3339 time the hold in force was placed; undefined while released. */
  readonly since: string | undefined;
}

/** Read and change the legal hold; bound to the caller's transaction so the change and its audit event commit together. */
export interface LegalHoldStore {
  get(): Promise<LegalHold>;
  /** Places (`enabled`) or releases the hold; placing it again keeps the original `since`. */
  set(enabled: boolean, reason: string, at: string): Promise<LegalHold>;
}

export interface PruneBatch {
  /** Prune only rows recorded strictly before this RFC 3339 time. */
  readonly recordedBefore: string;
  /**
   * The sinks whose durable cursors bound pruning: a row at or past any of their cursors has not
   * been delivered yet and is kept. A sink with no cursor row has delivered nothing.
   */
  readonly sinkNames: readonly string[];
  readonly limit: number;
  /** The time written to `pruned_at`. */
  readonly at: string;
}

export type PruneOutcome =
  /** Another replica holds the pruner lock (PostgreSQL); nothing was done. */
  | { readonly kind: 'busy' }
  /** The legal hold is on; nothing was done. */
  | { readonly kind: 'held' }
  /** `pruned` rows lost their payload; fewer than `limit` means nothing else is due now. */
  | { readonly kind: 'pruned'; readonly pruned: number };

export interface PruneStore {
  /**
   * In one transaction, holding the pruner lock (PostgreSQL advisory lock, not waited for): reads
   * the legal hold, the smallest cursor of `sinkNames` and the latest signed checkpoint size, and
   * replaces the payload of up to `limit` integrated, unpruned rows with leaf index below both
   * bounds and `recorded_at` before `recordedBefore`, in leaf order. Rows keep `leaf_index` and
   * `leaf_hash`; `payload` becomes '' and `pruned_at` is set, and the indexed query copies are
   * cleared.
   */
  pruneBatch(batch: PruneBatch): Promise<PruneOutcome>;
}
