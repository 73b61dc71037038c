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
import { type HashedEntries, LeafHasher } from './leaf-hasher.js';
import { CompactRange, HASH_SIZE, type Hash, leafHash, leafHashOfText, toHex } from './merkle.js';
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

/**
 * Entries as a tlog serves them, still in their entry bundles (c2sp.org/tlog-tiles): the hashing
 * worker splits them, so this thread makes no object per entry. `bundles[b]` holds entries
 * [start + 256·b, start + 256·b + width); a bundle retention pruned is given as its entries
 * (pruned, with the leaf hashes of its level-0 tile). The bundles run up to the first that could
 * not be fetched.
 */
export interface EntryBundles {
  readonly bundles: readonly ({ readonly body: Uint8Array; readonly width: number } | { readonly prunedWidth: number; readonly pruned: readonly LogEntry[] })[];
}

/** Stands for an entry the worker split from its bundle and hashed (see verifyLog's `read`). */
const BUNDLED: LogEntry = Object.freeze({ index: -1, entry: new Uint8Array(0) });

/**
 * Splits bundles on this thread, into entries numbered from `start`. As with a bundle that could
 * not be fetched, the entries stop before the first malformed bundle, which the verifier then
 * reports as the first missing entry (or, when it is the chunk's first, as unreadable).
 */
function splitBundles(start: number, bundles: EntryBundles['bundles']): LogEntry[] {
  const rows: LogEntry[] = [];
  for (let b = 0; b < bundles.length; b++) {
    const bundle = bundles[b] as EntryBundles['bundles'][number];
    if ('pruned' in bundle) {
      rows.push(...bundle.pruned);
      continue;
    }
    let entries: Uint8Array[];
    try {
      entries = decodeEntryBundle(bundle.body);
      if (entries.length > bundle.width) throw new Error(`entry bundle ${start / TILE_WIDTH + b} holds ${entries.length} entries, not ${bundle.width}`);
    } catch (err) {
      if (b === 0) throw err;
      break;
    }
    rows.push(...entries.map((entry, i) => ({ index: start + b * TILE_WIDTH + i, entry })));
  }
  return rows;
}

/** Where the verifier reads the log from. Everything it returns is untrusted. */
export interface LogSource {
  /** Signed checkpoint notes to check (any order). */
  checkpoints(): Promise<readonly string[]>;
  /** How many entries the source holds (may exceed the latest checkpoint: not yet signed). */
  size(): Promise<number>;
  /**
   * Entries with index in [start, end), in order; `start` is a multiple of 256 and
   * end − start ≤ {@link LogSource.chunk}. A tlog source may answer with the entry bundles
   * unsplit ({@link EntryBundles}).
   */
  entries(start: number, end: number): Promise<readonly LogEntry[] | EntryBundles>;
  /** How many entries one `entries` call may ask for: a multiple of 256 (default 256). */
  readonly chunk?: number;
  /**
   * How many `entries` calls may be under way ahead of the chunk being checked (default 1: the
   * next chunk is read while one is checked). A remote source wants more: each call is a burst of
   * round trips, and with one in flight the server idles while the last answers of a chunk arrive.
   */
  readonly readAhead?: number;
  /**
   * Hash tile (tlog-tiles), when the source serves them: its hashes, or its body (the hashes
   * concatenated), which spares a view per hash.
   */
  tile?(level: number, index: number, width: number): Promise<Hash[] | Uint8Array>;
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

/** A tile's hashes as one byte string (its body). */
function concatHashes(hashes: Hash[] | Uint8Array): Uint8Array {
  return hashes instanceof Uint8Array ? hashes : Buffer.concat(hashes);
}

/** The index of the first 32-byte hash where `got` differs from `want` (or ends), or −1. */
function firstDifference(want: Uint8Array, got: Uint8Array): number {
  if (Buffer.compare(want, got.subarray(0, want.length)) === 0) return -1;
  for (let i = 0; i * HASH_SIZE < want.length; i++) {
    const at = i * HASH_SIZE;
    if (got.length < at + HASH_SIZE || Buffer.compare(want.subarray(at, at + HASH_SIZE), got.subarray(at, at + HASH_SIZE)) !== 0) return i;
  }
  return -1;
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

  // The tree is kept as two compact ranges: `tiles` over the roots of whole 256-entry tiles
  // (a tree over those roots has the same interior nodes as the leaf tree from height 8 up), and
  // `inTile` over the leaves of the tile being filled. A whole tile the hashing worker already
  // folded goes into `tiles` as one hash; otherwise its leaves go through `inTile`.
  const tiles = CompactRange.empty();
  let inTile = CompactRange.empty();
  const size = (): number => tiles.size * TILE_WIDTH + inTile.size;
  const root = (): Hash => {
    if (inTile.size === 0) return tiles.root();
    if (tiles.size === 0) return inTile.root();
    // size = 256·k + r with r < 256, so its subtrees are those of k tiles followed by those of r.
    return CompactRange.fromJSON({ size: size(), hashes: [...tiles.toJSON().hashes, ...inTile.toJSON().hashes] }).root();
  };
  // Hash tiles being rebuilt, one per level: level 0 holds leaf hashes, level l ≥ 1 the roots of
  // level l − 1 tiles; the root of a full level-l tile is the node of height 8·l that
  // `tiles.append` completes (height 8·(l − 1) in the tree over tile roots).
  const pending: Hash[][] = [[]];
  const tileIndex: number[] = [0];
  let tilesChecked = 0;
  let lastMatched = 0;
  let latest: VerifyReport['latest'];
  // Tile fetches run while entries are hashed; they are compared in order after each chunk.
  let fetched: { level: number; index: number; width: number; want: Hash[] | Uint8Array; got: Promise<Hash[] | Uint8Array> }[] = [];
  const tileSource = source.tile?.bind(source);

  /** Fetches tile `level`/next index; `want` is what it must hold (by default pending[level]). */
  const checkTile = (level: number, width: number, want: Hash[] | Uint8Array = pending[level] as Hash[]): void => {
    if (!tileSource) return;
    const index = tileIndex[level] as number;
    const got = tileSource(level, index, width);
    got.catch(() => undefined); // examined in compareTiles
    fetched.push({ level, index, width, want, got });
  };

  const compareTiles = async (): Promise<void> => {
    const batch = fetched;
    fetched = [];
    for (const { level, index, width, want, got: pendingGot } of batch) {
      tilesChecked++;
      let got: Uint8Array;
      try {
        got = concatHashes(await pendingGot);
      } catch (err) {
        problems.push({ kind: 'tile_mismatch', message: `tile ${level}/${index} (width ${width}) is unavailable: ${(err as Error).message}`, range: [index * TILE_WIDTH ** (level + 1), end] });
        continue;
      }
      const bad = firstDifference(concatHashes(want), got);
      if (got.length !== width * HASH_SIZE || bad >= 0) {
        const at = Math.max(0, bad) + index * TILE_WIDTH;
        const message = `tile ${level}/${index} differs from the recomputed tree at hash ${at}`;
        // At level 0 a differing hash is one entry that does not hash to the log's leaf hash.
        problems.push(level === 0 ? { kind: 'tile_mismatch', message, index: at } : { kind: 'tile_mismatch', message, range: [at * TILE_WIDTH ** level, (at + 1) * TILE_WIDTH ** level] });
      }
    }
  };

  // Roots of full hash tiles completed by the current tile root: completed[l] closes level l + 1.
  let completed: Hash[] = [];
  const onNode = (height: number, _index: number, h: Hash): void => {
    if (height % TILE_HEIGHT === 0) completed.push(h);
  };
  /**
   * A whole tile of leaves: its root joins `tiles`; `checked` says whether its hash tiles are
   * compared, `leaves` (the 256 leaf hashes concatenated) what its level-0 tile must hold when
   * they were not collected in pending[0].
   */
  const closeTile = (tileRoot: Hash, checked: boolean, leaves?: Uint8Array): void => {
    if (!checked) {
      tiles.append(tileRoot);
      return;
    }
    checkTile(0, TILE_WIDTH, leaves);
    pending[0] = [];
    tileIndex[0] = (tileIndex[0] as number) + 1;
    completed = [];
    tiles.append(tileRoot, onNode);
    (pending[1] ??= []).push(tileRoot);
    tileIndex[1] ??= 0;
    for (let level = 1; (pending[level] as Hash[]).length === TILE_WIDTH; level++) {
      checkTile(level, TILE_WIDTH);
      pending[level] = [];
      tileIndex[level] = (tileIndex[level] as number) + 1;
      (pending[level + 1] ??= []).push(completed[level - 1] as Hash);
      tileIndex[level + 1] ??= 0;
    }
  };

  const compareAt = (at: number): void => {
    const want = targets.get(at)?.rootHash ?? (trusted && trusted.size === at ? trusted.rootHash : undefined);
    if (!want) return;
    const label = trusted && trusted.size === at ? 'the checkpoint verified earlier' : `checkpoint ${at}`;
    const got = root();
    if (!sameBytes(got, want)) {
      problems.push({
        kind: 'root_mismatch',
        message: `the tree of ${at} recomputed from the entries has root ${toHex(got)}, but ${label} says ${toHex(want)}`,
        range: [lastMatched, at],
        size: at,
      });
      return;
    }
    // A trusted head the stored checkpoints do not include must match too.
    if (trusted && trusted.size === at && targets.has(at) && !sameBytes(trusted.rootHash, want)) {
      problems.push({ kind: 'root_mismatch', message: `checkpoint ${at} contradicts the checkpoint verified earlier`, range: [0, at], size: at });
      return;
    }
    lastMatched = at;
    const t = targets.get(at);
    if (t?.note) latest = { size: at, rootHash: t.rootHash, note: t.note };
  };
  // Tiles with a compared size strictly inside: those go leaf by leaf.
  const comparedInside = new Set([...targets.keys(), ...(trusted ? [trusted.size] : [])].filter((s) => s % TILE_WIDTH !== 0).map((s) => Math.floor(s / TILE_WIDTH)));

  if (trusted && trusted.size === 0) compareAt(0);
  let checked = 0;
  let pruned = 0;
  let stopped = false;
  const chunk = Math.max(TILE_WIDTH, Math.floor((source.chunk ?? TILE_WIDTH) / TILE_WIDTH) * TILE_WIDTH);
  const hasher = (options.hashWorker ?? end >= HASH_WORKER_MIN_ENTRIES) ? LeafHasher.start() : undefined;
  // `row(k)` is entry at + k of the chunk, or BUNDLED for one the worker split from its bundle.
  type Read = { row: (k: number) => LogEntry | undefined; computed: HashedEntries | undefined };
  const read = (at: number): Promise<Read> | undefined => {
    if (at >= end) return undefined;
    const p = source.entries(at, Math.min(end, at + chunk)).then(async (got): Promise<Read> => {
      if (!('bundles' in got)) return { row: (k) => got[k], computed: await hasher?.hash(got) };
      const { bundles } = got;
      const computed = hasher ? await hasher.hashBundles(bundles) : undefined;
      if (!computed || computed.badBundles.length > 0) {
        // Split here, where a malformed bundle is reported as before; hashed on this thread.
        const rows = splitBundles(at, bundles);
        return { row: (k) => rows[k], computed: undefined };
      }
      return {
        row: (k) => {
          const bundle = bundles[Math.floor(k / TILE_WIDTH)];
          const j = k % TILE_WIDTH;
          if (!bundle) return undefined;
          return 'pruned' in bundle ? bundle.pruned[j] : j < bundle.width ? BUNDLED : undefined;
        },
        computed,
      };
    });
    p.catch(() => undefined); // examined when its turn comes
    return p;
  };
  try {
    // The next chunks are read (and their leaves hashed by the worker) while this one is checked.
    const ahead: (Promise<Read> | undefined)[] = [];
    let readFrom = 0;
    const readAhead = (): void => {
      for (; ahead.length < Math.max(1, source.readAhead ?? 1) && readFrom < end; readFrom += chunk) ahead.push(read(readFrom));
    };
    for (let at = 0; at < end && !stopped; at += chunk) {
      const chunkEnd = Math.min(end, at + chunk);
      readAhead();
      const current = ahead.shift();
      readAhead();
      let row: Read['row'];
      let computed: HashedEntries | undefined;
      try {
        ({ row, computed } = await (current as Promise<Read>));
      } catch (err) {
        problems.push({ kind: 'entry_missing', message: `entries from ${at} could not be read: ${(err as Error).message}`, index: at });
        break;
      }
      for (let tileStart = at; tileStart < chunkEnd && !stopped; tileStart += TILE_WIDTH) {
        const tileEnd = Math.min(chunkEnd, tileStart + TILE_WIDTH);
        // Hash tiles are compared up to the signed size; beyond it nothing is served.
        const tileChecked = tileSource !== undefined && tileEnd <= signedEnd;
        // The worker's root stands for the tile's leaves only if every row below is the entry it
        // hashed (checked row by row) and no root is compared inside the tile.
        const tileRoot = tileEnd - tileStart === TILE_WIDTH && !comparedInside.has(tileStart / TILE_WIDTH) ? computed?.tileRoots[(tileStart - at) / TILE_WIDTH] : undefined;
        for (let i = tileStart; i < tileEnd; i++) {
          const entry = row(i - at);
          if (!entry || (entry !== BUNDLED && entry.index !== i)) {
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
          if (entry.pruned) {
            // Nothing to re-hash: the stored hash goes into the tree, which the checkpoints check.
            if (!entry.storedLeafHash || entry.storedLeafHash.length !== 32) {
              problems.push({ kind: 'entry_missing', message: `entry ${i} is marked pruned but has no leaf hash; nothing after it can be checked`, index: i });
              stopped = true;
              end = i;
              break;
            }
            h = entry.storedLeafHash;
            pruned++;
          } else {
            if (tileRoot && !entry.storedLeafHash) {
              // The worker's tile root and leaf hashes stand for this entry: nothing to fold here.
              checked++;
              continue;
            }
            h = computed?.leaf(i - at) ?? (typeof entry.entry === 'string' ? leafHashOfText(entry.entry) : leafHash(entry.entry));
            if (entry.storedLeafHash && !sameBytes(entry.storedLeafHash, h)) {
              problems.push({ kind: 'leaf_hash_mismatch', message: `entry ${i} does not hash to its stored leaf hash: it was altered`, index: i });
            }
          }
          checked++;
          if (tileRoot) continue;
          if (tileSource && i < signedEnd) (pending[0] as Hash[]).push(h);
          inTile.append(h);
          compareAt(size());
          if (inTile.size === TILE_WIDTH) {
            const whole = inTile.root();
            inTile = CompactRange.empty();
            closeTile(whole, tileChecked);
          }
        }
        if (tileRoot && !stopped) {
          const offset = (tileStart - at) * HASH_SIZE;
          closeTile(tileRoot, tileChecked, computed?.leaves.subarray(offset, offset + TILE_WIDTH * HASH_SIZE));
          compareAt(size());
        }
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
        storedLeafHash: Buffer.from(r.leafHash, 'hex'),
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
  type Bundle = EntryBundles['bundles'][number];
  const bundle = async (start: number, end: number): Promise<Bundle> => {
    const index = start / TILE_WIDTH;
    const width = end - start;
    try {
      return { body: await fetch(tilePath({ level: 'entries', index, width })), width };
    } catch (err) {
      if ((err as TlogFetchError).status !== 410) throw err;
      const hashes = decodeHashTile(await fetch(tilePath({ level: 0, index, width })));
      return { prunedWidth: width, pruned: hashes.map((h, i) => ({ index: start + i, entry: new Uint8Array(0), storedLeafHash: h, pruned: true })) };
    }
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
    // Bundles of a chunk are fetched concurrently, and four chunks are read ahead: round trips,
    // not hashing, bound an online run, and smaller chunks keep the server and the hashing worker
    // busy evenly instead of in bursts.
    chunk: 16 * TILE_WIDTH,
    readAhead: 4,
    async entries(start, end) {
      const bundles: Promise<Bundle>[] = [];
      for (let at = start; at < end; at += TILE_WIDTH) bundles.push(bundle(at, Math.min(end, at + TILE_WIDTH)));
      // Up to the first bundle that failed: the verifier then reports the first missing index.
      const settled = await Promise.allSettled(bundles);
      const failed = settled.findIndex((r) => r.status === 'rejected');
      if (failed === 0) throw (settled[0] as PromiseRejectedResult).reason;
      return { bundles: settled.slice(0, failed < 0 ? settled.length : failed).map((r) => (r as PromiseFulfilledResult<Bundle>).value) };
    },
    async tile(level, index, width) {
      const body = await fetch(tilePath({ level, index, width }));
      if (body.length % HASH_SIZE !== 0) decodeHashTile(body); // throws its error for a torn body
      return body;
    },
  };
}
