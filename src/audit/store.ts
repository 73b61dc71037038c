import type { EventFilter, EventIndexFields } from './query.js';

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

/** A perfect subtree's root, persisted as integration completes it (see tiles.ts STORED_NODE_MIN_HEIGHT). */
export interface TreeNodeRow {
  readonly height: number;
  readonly index: number;
  /** Hex SHA-256. */
  readonly hash: string;
}

export interface Integration {
  readonly entries: readonly IntegratedEntry[];
  /** Interior nodes completed by these entries; stored in the same transaction. */
  readonly nodes: readonly TreeNodeRow[];
  readonly tree: TreeState;
  readonly at: string;
}

export interface StoredAuditEvent {
  readonly id: number;
  readonly tenant: string;
  readonly payload: string;
  readonly leafIndex: number | null;
  /** When retention pruned the payload (then `payload` is ''); null for an intact event. */
  readonly prunedAt: string | null;
}

export interface EventPage {
  readonly items: readonly StoredAuditEvent[];
  /** Opaque cursor for the next page; undefined on the last page. */
  readonly nextCursor: number | undefined;
}

/** An event as handed to the store: its serialized payload and when it was recorded. */
export interface AuditRowInput {
  readonly tenant: string;
  readonly recordedAt: string;
  readonly payload: string;
  /**
   * The indexed columns, when the producer still holds the event they come from (the audit
   * log's `rowFor`); absent, the store derives them from the payload, with the same result.
   */
  readonly index?: EventIndexFields;
}

export interface AuditStore {
  /** Inserts the rows in the caller's transaction; they get leaf indexes when integrated. */
  insert(rows: readonly AuditRowInput[]): Promise<void>;
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
  /** Events of one tenant after `afterId`, oldest first, narrowed by `filter`. */
  listEvents(tenant: string, afterId: number, limit: number, filter?: EventFilter): Promise<EventPage>;
  /** Leaf hashes [start, end) in leaf order; used to build proofs and verify the tree. */
  leafHashes(start: number, end: number): Promise<string[]>;
  /** The stored interior nodes among `refs`, in no particular order; missing ones are absent. */
  treeNodes(refs: readonly { height: number; index: number }[]): Promise<TreeNodeRow[]>;
  /** Stored interior nodes at `height` with index in [start, end), in index order (hex). */
  treeNodeRange(height: number, start: number, end: number): Promise<string[]>;
  /**
   * Integrated entries with leaf index in [start, end), in leaf order: the payload exactly as
   * hashed and the stored leaf hash. Missing indexes are simply absent (verifiers look for gaps).
   */
  leafEntries(start: number, end: number): Promise<LeafEntry[]>;
  /**
   * The body of a hash tile in hex: the hashes at `height` (0: leaf hashes; above: the stored
   * interior nodes) with index in [start, end), concatenated in index order. A missing hash is
   * absent, so the string is shorter than 64 digits per hash (src/audit/served-tiles.ts).
   */
  tileHashesHex(height: number, start: number, end: number): Promise<string>;
  /** The entries with leaf index in [start, end) as one tlog-tiles entry bundle, built by the store. */
  entryBundle(start: number, end: number): Promise<StoredBundle>;
  /** Leaf indexes in [start, end) whose payload retention pruned, in order. */
  prunedLeaves(start: number, end: number): Promise<number[]>;
  count(): Promise<number>;
}

/**
 * Entries of a leaf range encoded by the store (c2sp.org/tlog-tiles: each payload's UTF-8 bytes
 * behind a big-endian uint16 length, in leaf order), with what the caller needs to check that the
 * range is whole before serving it.
 */
export interface StoredBundle {
  /** Empty when the range holds no entry. */
  readonly body: Uint8Array;
  /** How many entries the range holds, and their smallest and largest leaf index. */
  readonly count: number;
  readonly first: number | null;
  readonly last: number | null;
  /** How many of them retention pruned, and the first of those. */
  readonly pruned: number;
  readonly firstPruned: number | null;
  /** The longest payload in bytes; above 65,535 its length prefix is wrong and `body` unusable. */
  readonly longest: number;
}

export interface LeafEntry {
  readonly leafIndex: number;
  /** '' once pruned; the stored leaf hash is then all that is left of the entry. */
  readonly payload: string;
  readonly leafHash: string;
  /** When retention pruned the payload; null for an intact entry. */
  readonly prunedAt: string | null;
}

/** A signed checkpoint as stored: the note is what was signed; the rest is for fast lookups. */
export interface StoredCheckpoint {
  readonly size: number;
  /** Hex RFC 6962 root. */
  readonly rootHash: string;
  /** The signed note (tlog-checkpoint body + signature line). */
  readonly note: string;
  /** CompactRange JSON at `size`: lets the next checkpoint check consistency from new leaves only. */
  readonly frontier: string;
  readonly createdAt: string;
}

/** The log's identity: its origin (the note key name) and its Ed25519 key. */
export interface StoredLogKey {
  readonly origin: string;
  /** Verifier key string (`<origin>+<id>+<base64>`): public, stored in clear. */
  readonly verifierKey: string;
  /** PKCS#8 private key as barrier ciphertext; never stored in clear. */
  readonly sealedPrivateKey: string;
  readonly createdAt: string;
}

/** The storage the checkpointer and the log verifier need. */
export interface CheckpointStore {
  /** The log key; undefined before the first start created it. */
  loadKey(): Promise<StoredLogKey | undefined>;
  /** Stores the key unless one exists (another replica won); returns the key in force. */
  createKey(key: StoredLogKey): Promise<StoredLogKey>;
  /** The checkpoint with the largest size; undefined before the first. */
  latest(): Promise<StoredCheckpoint | undefined>;
  /** The checkpoint of exactly `size`, if one was signed. */
  get(size: number): Promise<StoredCheckpoint | undefined>;
  /** Up to `limit` checkpoints with size > `afterSize`, by size. */
  list(afterSize: number, limit: number): Promise<StoredCheckpoint[]>;
  /** Stores a checkpoint; a second one for the same size is ignored (same size, same tree). */
  insert(checkpoint: StoredCheckpoint): Promise<void>;
  /**
   * Runs `work` holding the checkpoint signer lock, so replicas sign one after another and
   * each checks consistency from the latest stored checkpoint.
   */
  withSignerLock<T>(work: () => Promise<T>): Promise<T>;
}
