/**
 * The storage the audit log needs, and nothing more: append rows, integrate pending rows into the
 * tree under the sequencer lock, and page through events of one tenant.
 */
export interface PendingEntry {
  readonly id: number;
  readonly payload: string;
}

export interface TreeState {
  readonly size: number;
  readonly frontier: string;
  readonly rootHash: string;
}

export interface IntegratedEntry {
  readonly id: number;
  readonly leafIndex: number;
  readonly leafHash: string;
}

export interface Integration {
  readonly entries: readonly IntegratedEntry[];
  readonly tree: TreeState;
  readonly at: string;
}

export interface StoredAuditEvent {
  readonly id: number;
  readonly tenant: string;
  readonly payload: string;
  readonly leafIndex: number | null;
}

export interface EventPage {
  readonly items: readonly StoredAuditEvent[];
  /** Opaque cursor for the next page; undefined on the last page. */
  readonly nextCursor: number | undefined;
}

export interface AuditStore {
  /** Inserts the rows in the caller's transaction; they get leaf indexes when integrated. */
  insert(rows: readonly { tenant: string; recordedAt: string; payload: string }[]): Promise<void>;
  /**
   * Inside one transaction holding the sequencer lock: reads the tree state and up to `limit`
   * pending rows in insertion order, and stores what `integrate` computes from them. Returns
   * undefined when nothing was pending.
   */
  integratePending(
    limit: number,
    integrate: (state: TreeState | undefined, pending: readonly PendingEntry[]) => Integration,
  ): Promise<Integration | undefined>;
  treeState(): Promise<TreeState | undefined>;
  listEvents(tenant: string, afterId: number, limit: number): Promise<EventPage>;
  /** Leaf hashes [start, end) in leaf order; used to build proofs and verify the tree. */
  leafHashes(start: number, end: number): Promise<string[]>;
  count(): Promise<number>;
}
