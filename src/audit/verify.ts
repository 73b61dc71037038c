/**
 * Verifies the whole audit log from its raw material, trusting only the log's verifier key (and,
 * for a witness, a checkpoint it verified earlier):
 *
 * 1. every checkpoint's signed note verifies under the key and names the log (./checkpoint.ts);
 *    two signed checkpoints of one size with different roots are a split view;
 * 2. every leaf hash is recomputed from its entry (RFC 6962 §2.1), in leaf order, checking for
 *    gaps and, where the source stores leaf hashes, that they match;
 * 3. the tree is rebuilt leaf by leaf (merkle.ts's CompactRange) and its root compared with every
 *    checkpoint at that checkpoint's size: two checkpoints that both match the one recomputed
 *    tree are consistent, so this also checks each checkpoint's consistency with the next;
 * 4. where the source serves hash tiles (tlog-tiles), each tile is compared with the recomputed
 *    hashes, so a client relying on tiles for proofs is not misled.
 *
 * Pruned entries (retention, ./pruner.ts) have no content left: their leaf hash is taken as the
 * source stores or serves it and goes into the tree like any other, so the checkpoints still
 * bind it; they are counted in `entriesPruned`, and only their content is unchecked. A row
 * blanked without the pruned marker still fails its leaf hash, and a pruned row whose leaf hash
 * was replaced no longer rebuilds the signed root.
 *
 * The source is abstract: the store (offline, `rampart audit verify --data-dir`) or the HTTP
 * tiles (online). Problems are collected, not thrown, and each names the index (or the range)
 * where the log first goes wrong.
 */

import { openCheckpoint, parseCheckpoint } from './checkpoint.js';
import { LeafHasher } from './leaf-hasher.js';
import { CompactRange, type Hash, leafHash, leafHashOfText, toHex } from './merkle.js';
import { type NoteVerifier, parseNote } from './note.js';
import type { AuditStore, CheckpointStore } from './store.js';
import { TILE_HEIGHT, TILE_WIDTH, decodeEntryBundle, decodeHashTile, tilePath } from './tiles.js';

export interface LogEntry {
  readonly index: number;
  /**
   * The entry as hashed; empty for a pruned entry. A string stands for its UTF-8 encoding (the
   * store holds payloads as text, and hashing it directly saves a copy per entry).
   */
  readonly entry: Uint8Array | string;
  /** The leaf hash the source stores next to the entry, if it stores one. */
  readonly storedLeafHash?: Hash;
  /**
   * Retention pruned the entry's content: `storedLeafHash` (required) is the leaf, and only the
   * tree can check it.
   */
  readonly pruned?: boolean;
}

/** Where the verifier reads the log from. Everything it returns is untrusted. */
export interface LogSource {
  /** Signed checkpoint notes to check (any order). */
  checkpoints(): Promise<readonly string[]>;
  /** How many entries the source holds (may exceed the latest checkpoint: not yet signed). */
  size(): Promise<number>;
  /**
   * Entries with index in [start, end), in order; `start` is a multiple of 256 and
   * end − start ≤ {@link LogSource.chunk}.
   */
  entries(start: number, end: number): Promise<readonly LogEntry[]>;
  /** How many entries one `entries` call may ask for: a multiple of 256 (default 256). */
  readonly chunk?: number;
  /** Hash tile (tlog-tiles), when the source serves them. */
  tile?(level: number, index: number, width: number): Promise<Hash[]>;
}

export type ProblemKind =
  | 'checkpoint_invalid'
  | 'checkpoint_conflict'
  | 'entry_missing'
  | 'leaf_hash_mismatch'
  | 'root_mismatch'
  | 'rollback'
  | 'tile_mismatch';

export interface Problem {
  readonly kind: ProblemKind;
  readonly message: string;
  /** The first index known to be bad. */
  readonly index?: number;
  /** When only a range can be named: the bad entry is in [range[0], range[1]). */
  readonly range?: readonly [number, number];
  /** The checkpoint size involved. */
  readonly size?: number;
}

/** A checkpoint the verifier already trusts (a witness's state). */
export interface TrustedHead {
  readonly size: number;
  readonly rootHash: Hash;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Entries placed in the recomputed tree (pruned ones included). */
  readonly entriesChecked: number;
  /** Of those, entries whose content was pruned: checked by the tree only, not re-hashed. */
  readonly entriesPruned: number;
  readonly checkpointsChecked: number;
  readonly tilesChecked: number;
  /** The largest checkpoint that verified and matches the recomputed tree. */
  readonly latest: { readonly size: number; readonly rootHash: Hash; readonly note: string } | undefined;
  /** Entries beyond the latest checkpoint (integrated, not yet signed). */
  readonly unsignedEntries: number;
  readonly problems: readonly Problem[];
  /** The smallest index a problem names (exactly or as the start of a range). */
  readonly firstBadIndex: number | undefined;
}

interface Target {
  readonly size: number;
  readonly rootHash: Hash;
  readonly note: string | undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function sizeOfUnverified(note: string): number | undefined {
  try {
    return parseCheckpoint(parseNote(note).text).size;
  } catch {
    return undefined;
  }
}

/**
 * Logs of at least this many entries have their leaf hashes computed on a worker thread
 * (./leaf-hasher.ts): below it, starting the worker costs more than it saves.
 */
export const HASH_WORKER_MIN_ENTRIES = 16_384;

export interface VerifyOptions {
  readonly verifier: NoteVerifier;
  readonly trusted?: TrustedHead;
  /** Overrides {@link HASH_WORKER_MIN_ENTRIES}: true or false forces the choice. */
  readonly hashWorker?: boolean;
}

export async function verifyLog(source: LogSource, options: VerifyOptions): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const targets = new Map<number, Target>();
  let checkpointsChecked = 0;

  for (const note of await source.checkpoints()) {
    checkpointsChecked++;
    let cp: ReturnType<typeof openCheckpoint>;
    try {
      cp = openCheckpoint(note, options.verifier);
    } catch (err) {
      const size = sizeOfUnverified(note);
      problems.push({ kind: 'checkpoint_invalid', message: `checkpoint${size === undefined ? '' : ` of size ${size}`} does not verify: ${(err as Error).message}`, ...(size === undefined ? {} : { size }) });
      continue;
    }
    const seen = targets.get(cp.size);
    if (seen && !sameBytes(seen.rootHash, cp.rootHash)) {
      problems.push({ kind: 'checkpoint_conflict', message: `two signed checkpoints of size ${cp.size} have different roots (split view)`, size: cp.size });
      continue;
    }
    targets.set(cp.size, { size: cp.size, rootHash: cp.rootHash, note });
  }

  const signedEnd = Math.max(0, ...targets.keys());
  let end = Math.max(signedEnd, await source.size());
  const trusted = options.trusted;
  if (trusted && trusted.size > end) {
    problems.push({
      kind: 'rollback',
      message: `the log has ${end} entries but a checkpoint of size ${trusted.size} was verified earlier: entries were removed`,
      index: end,
      size: trusted.size,
    });
  }

  const range = CompactRange.empty();
  // Hash tiles being rebuilt, one per level: level 0 takes leaf hashes; the root of a full tile
  // is the tree node of height 8·(level + 1) that CompactRange.append completes with it.
  const pending: Hash[][] = [[]];
  const tileIndex: number[] = [0];
  let tilesChecked = 0;
  let lastMatched = 0;
  let latest: VerifyReport['latest'];
  // Tile fetches run while entries are hashed; they are compared in order after each chunk.
  let fetched: { level: number; index: number; width: number; want: Hash[]; got: Promise<Hash[]> }[] = [];
  const tileSource = source.tile?.bind(source);

  const checkTile = (level: number, width: number): void => {
    if (!tileSource) return;
    const index = tileIndex[level] as number;
    const got = tileSource(level, index, width);
    got.catch(() => undefined); // examined in compareTiles
    fetched.push({ level, index, width, want: pending[level] as Hash[], got });
  };

  const compareTiles = async (): Promise<void> => {
    const batch = fetched;
    fetched = [];
    for (const { level, index, width, want, got: pendingGot } of batch) {
      tilesChecked++;
      let got: Hash[];
      try {
        got = await pendingGot;
      } catch (err) {
        problems.push({ kind: 'tile_mismatch', message: `tile ${level}/${index} (width ${width}) is unavailable: ${(err as Error).message}`, range: [index * TILE_WIDTH ** (level + 1), end] });
        continue;
      }
      const bad = want.findIndex((h, i) => !got[i] || !sameBytes(h, got[i] as Hash));
      if (got.length !== width || bad >= 0) {
        const at = Math.max(0, bad) + index * TILE_WIDTH;
        const message = `tile ${level}/${index} differs from the recomputed tree at hash ${at}`;
        // At level 0 a differing hash is one entry that does not hash to the log's leaf hash.
        problems.push(level === 0 ? { kind: 'tile_mismatch', message, index: at } : { kind: 'tile_mismatch', message, range: [at * TILE_WIDTH ** level, (at + 1) * TILE_WIDTH ** level] });
      }
    }
  };

  // Roots of full tiles completed by the current leaf: completed[l] closes tile level l.
  let completed: Hash[] = [];
  const onNode = (height: number, _index: number, h: Hash): void => {
    if (height % TILE_HEIGHT === 0) completed.push(h);
  };
  const pushLeaf = (h: Hash): void => {
    (pending[0] as Hash[]).push(h);
    for (let level = 0; (pending[level] as Hash[]).length === TILE_WIDTH; level++) {
      checkTile(level, TILE_WIDTH);
      pending[level] = [];
      tileIndex[level] = (tileIndex[level] as number) + 1;
      (pending[level + 1] ??= []).push(completed[level] as Hash);
      tileIndex[level + 1] ??= 0;
    }
  };

  const compareAt = (size: number): void => {
    const want = targets.get(size)?.rootHash ?? (trusted && trusted.size === size ? trusted.rootHash : undefined);
    if (!want) return;
    const label = trusted && trusted.size === size ? 'the checkpoint verified earlier' : `checkpoint ${size}`;
    const root = range.root();
    if (!sameBytes(root, want)) {
      problems.push({
        kind: 'root_mismatch',
        message: `the tree of ${size} recomputed from the entries has root ${toHex(root)}, but ${label} says ${toHex(want)}`,
        range: [lastMatched, size],
        size,
      });
      return;
    }
    // A trusted head the stored checkpoints do not include must match too.
    if (trusted && trusted.size === size && targets.has(size) && !sameBytes(trusted.rootHash, want)) {
      problems.push({ kind: 'root_mismatch', message: `checkpoint ${size} contradicts the checkpoint verified earlier`, range: [0, size], size });
      return;
    }
    lastMatched = size;
    const t = targets.get(size);
    if (t?.note) latest = { size, rootHash: t.rootHash, note: t.note };
  };

  if (trusted && trusted.size === 0) compareAt(0);
  let checked = 0;
  let pruned = 0;
  let stopped = false;
  const chunk = Math.max(TILE_WIDTH, Math.floor((source.chunk ?? TILE_WIDTH) / TILE_WIDTH) * TILE_WIDTH);
  const hasher = (options.hashWorker ?? end >= HASH_WORKER_MIN_ENTRIES) ? LeafHasher.start() : undefined;
  type Read = { rows: readonly LogEntry[]; hashes: Promise<Hash[]> | undefined };
  const read = (at: number): Promise<Read> | undefined => {
    if (at >= end) return undefined;
    const p = source.entries(at, Math.min(end, at + chunk)).then((rows) => {
      const hashes = hasher?.hash(rows);
      hashes?.catch(() => undefined); // awaited when its turn comes
      return { rows, hashes };
    });
    p.catch(() => undefined); // examined when its turn comes
    return p;
  };
  try {
    // The next chunk is read (and its leaves hashed by the worker) while this one is checked.
    let next = read(0);
    for (let at = 0; at < end && !stopped; at += chunk) {
      const chunkEnd = Math.min(end, at + chunk);
      let rows: readonly LogEntry[];
      let hashes: Promise<Hash[]> | undefined;
      try {
        ({ rows, hashes } = await (next as Promise<Read>));
      } catch (err) {
        problems.push({ kind: 'entry_missing', message: `entries from ${at} could not be read: ${(err as Error).message}`, index: at });
        break;
      }
      next = read(at + chunk);
      const computed = hashes ? await hashes : undefined;
      for (let i = at; i < chunkEnd; i++) {
        const row = rows[i - at];
        if (!row || row.index !== i) {
          problems.push({
            kind: 'entry_missing',
            message: `entry ${i} is missing (the log ${signedEnd > i ? `signed ${signedEnd} entries` : `claims ${end} entries`}); nothing after it can be checked`,
            index: i,
          });
          stopped = true;
          end = i;
          break;
        }
        let h: Hash;
        if (row.pruned) {
          // Nothing to re-hash: the stored hash goes into the tree, which the checkpoints check.
          if (!row.storedLeafHash || row.storedLeafHash.length !== 32) {
            problems.push({ kind: 'entry_missing', message: `entry ${i} is marked pruned but has no leaf hash; nothing after it can be checked`, index: i });
            stopped = true;
            end = i;
            break;
          }
          h = row.storedLeafHash;
          pruned++;
        } else {
          h = computed?.[i - at] ?? (typeof row.entry === 'string' ? leafHashOfText(row.entry) : leafHash(row.entry));
          if (row.storedLeafHash && !sameBytes(row.storedLeafHash, h)) {
            problems.push({ kind: 'leaf_hash_mismatch', message: `entry ${i} does not hash to its stored leaf hash: it was altered`, index: i });
          }
        }
        if (tileSource && i < signedEnd) {
          completed = [];
          range.append(h, onNode);
          pushLeaf(h);
        } else {
          range.append(h);
        }
        checked++;
        compareAt(range.size);
      }
      await compareTiles();
    }
  } finally {
    await hasher?.close();
  }
  if (!stopped) {
    // The partial tiles of the latest signed size.
    for (let level = 0; level < pending.length; level++) {
      const width = (pending[level] as Hash[]).length;
      if (width > 0) checkTile(level, width);
    }
  }
  await compareTiles();

  // An exact index explains a root mismatch over a range that contains it (a consequence, not
  // a second fault); a range counts only when nothing inside it was pinned down.
  const exact = problems.flatMap((p) => (p.index === undefined ? [] : [p.index]));
  const firstBadIndex = problems.reduce<number | undefined>((min, p) => {
    let at = p.index;
    if (at === undefined && p.range && !exact.some((i) => i >= (p.range as readonly [number, number])[0] && i < (p.range as readonly [number, number])[1])) at = p.range[0];
    return at === undefined ? min : Math.min(min ?? at, at);
  }, undefined);
  return {
    ok: problems.length === 0,
    entriesChecked: checked,
    entriesPruned: pruned,
    checkpointsChecked,
    tilesChecked,
    latest,
    unsignedEntries: Math.max(0, checked - (latest?.size ?? 0)),
    problems,
    firstBadIndex,
  };
}

/** The store as a log source: every stored checkpoint, every integrated entry, stored leaf hashes. */
export function storeLogSource(audit: AuditStore, checkpoints: CheckpointStore): LogSource {
  return {
    async checkpoints() {
      const notes: string[] = [];
      for (let after = -1; ; ) {
        const page = await checkpoints.list(after, 1000);
        if (page.length === 0) return notes;
        notes.push(...page.map((c) => c.note));
        after = (page.at(-1) as { size: number }).size;
      }
    },
    async size() {
      return (await audit.treeState())?.size ?? 0;
    },
    chunk: 4096,
    async entries(start, end) {
      const rows = await audit.leafEntries(start, end);
      return rows.map((r) => ({
        index: r.leafIndex,
        entry: r.payload,
        storedLeafHash: new Uint8Array(Buffer.from(r.leafHash, 'hex')),
        // Pruned means both the marker and the blank payload; a marker on a row that still has a
        // payload is ignored, so that payload is still checked against its leaf hash.
        ...(r.prunedAt !== null && r.payload === '' ? { pruned: true } : {}),
      }));
    },
  };
}

/** How a tlog fetcher reports an HTTP status other than 200; 410 on a bundle means "pruned". */
export interface TlogFetchError extends Error {
  readonly status?: number;
}

/**
 * Reads a tlog-tiles log below a prefix. `fetch` gets paths such as `checkpoint` or
 * `tile/0/001.p/3` and returns the body, or throws (a 404 included) an error whose `status` is
 * the HTTP status. An entry bundle answered 410 Gone (`audit.entry_pruned`: retention pruned an
 * entry in it) is replaced by the level-0 hash tile: those leaves are checked by the tree only.
 */
export function tlogSource(fetch: (path: string) => Promise<Uint8Array>): LogSource & { checkpointNote(): Promise<string> } {
  let note: Promise<string> | undefined;
  const checkpointNote = (): Promise<string> => {
    note ??= fetch('checkpoint').then((b) => new TextDecoder('utf-8', { fatal: true }).decode(b));
    return note;
  };
  const bundleEntries = async (start: number, end: number): Promise<LogEntry[]> => {
    const index = start / TILE_WIDTH;
    const width = end - start;
    let bundle: Uint8Array;
    try {
      bundle = await fetch(tilePath({ level: 'entries', index, width }));
    } catch (err) {
      if ((err as TlogFetchError).status !== 410) throw err;
      const hashes = decodeHashTile(await fetch(tilePath({ level: 0, index, width })));
      return hashes.map((h, i) => ({ index: start + i, entry: new Uint8Array(0), storedLeafHash: h, pruned: true }));
    }
    return decodeEntryBundle(bundle).map((entry, i) => ({ index: start + i, entry }));
  };
  return {
    checkpointNote,
    async checkpoints() {
      return [await checkpointNote()];
    },
    // Only what the checkpoint covers exists on the server; the verifier trusts nothing more.
    async size() {
      return sizeOfUnverified(await checkpointNote()) ?? 0;
    },
    // Bundles of one chunk are fetched concurrently: round trips, not hashing, bound an online run.
    chunk: 64 * TILE_WIDTH,
    async entries(start, end) {
      const bundles: Promise<LogEntry[]>[] = [];
      for (let at = start; at < end; at += TILE_WIDTH) bundles.push(bundleEntries(at, Math.min(end, at + TILE_WIDTH)));
      // Up to the first bundle that failed: the verifier then reports the first missing index.
      const settled = await Promise.allSettled(bundles);
      const failed = settled.findIndex((r) => r.status === 'rejected');
      if (failed === 0) throw (settled[0] as PromiseRejectedResult).reason;
      return settled.slice(0, failed < 0 ? settled.length : failed).flatMap((r) => (r as PromiseFulfilledResult<LogEntry[]>).value);
    },
    async tile(level, index, width) {
      return decodeHashTile(await fetch(tilePath({ level, index, width })));
    },
  };
}
