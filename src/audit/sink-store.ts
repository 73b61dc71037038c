/**
 * The storage the SIEM sink dispatcher needs, and nothing more: integrated events in leaf order,
 * and one durable delivery cursor per configured sink.
 *
 * Only integrated events are delivered: their leaf index is the order every sink sees, the same
 * order the Merkle tree fixes, so a receiver can match what it got against a signed checkpoint.
 */
export interface IntegratedEvent {
  readonly leafIndex: number;
  /** The stored payload: the exact bytes the leaf hash covers, never re-serialized. */
  readonly payload: string;
  /**
   * Retention pruned the payload (it is ''). Pruning waits for every configured sink's cursor, so
   * only a sink configured after the pruning meets one; the dispatcher skips it.
   */
  readonly pruned?: boolean;
}

export interface SinkStore {
  /** Up to `limit` integrated events with leaf index >= `fromLeafIndex`, in leaf order. */
  readIntegrated(fromLeafIndex: number, limit: number): Promise<IntegratedEvent[]>;
  /** How many events are integrated (the tree size); 0 before the first integration. */
  integratedSize(): Promise<number>;
  /** The next leaf index `sinkName` must receive; 0 for a sink that never delivered. */
  cursor(sinkName: string): Promise<number>;
  /**
   * Records that everything below `nextLeafIndex` reached `sinkName`. Monotonic: a smaller value
   * than the stored one is ignored, so a slow replica or a late retry never moves it backwards.
   */
  advance(sinkName: string, nextLeafIndex: number): Promise<void>;
  /**
   * Runs `work` while holding the delivery lock of `sinkName`, so that of several replicas on one
   * database only one delivers to a sink at a time (the others stand by and take over when it
   * stops). Does not wait: returns `{ acquired: false }` when another process holds the lock.
   */
  withSinkLock<T>(sinkName: string, work: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }>;
}
