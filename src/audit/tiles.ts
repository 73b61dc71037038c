/**
 * C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the log's Merkle tree served as static "tiles"
 * of 256 consecutive hashes, and its entries as "entry bundles".
 *
 * - The n-th tile at level l holds MTH(D[(n·256 + i)·256^l : (n·256 + i + 1)·256^l]) for
 *   i = 0…255: level 0 holds leaf hashes; above, each hash is the root of a full tile one level
 *   down. A partial tile (`.p/<W>`, 1 ≤ W ≤ 255) holds the first W hashes.
 * - Tile index n is written as 3-digit groups, all but the last prefixed with "x":
 *   1234067 → `x001/x234/067`.
 * - An entry bundle is the entries of one level-0 tile, each as a big-endian uint16 length and
 *   the entry bytes.
 *
 * Hashing is merkle.ts's; this module only arranges which hashes go where. Proofs are built from
 * the stored interior nodes (a handful of indexed reads) and checked against merkle.ts's
 * leaf-reading proofs in tests.
 */

import { AuditError, RampartError } from '../core/errors.js';
import { HASH_SIZE, type Hash, consistencyRanges, inclusionRanges, nodeHash, rootFromLeafHashes } from './merkle.js';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
/** Entry bundles prefix every entry with a uint16 length. */
export const MAX_ENTRY_BYTES = 0xffff;

export interface TileRef {
  /** 0…63 for hash tiles; `entries` for entry bundles. */
  readonly level: number | 'entries';
  readonly index: number;
  /** 256 for a full tile, 1…255 for a partial one. */
  readonly width: number;
}

/** `x001/x234/067` for 1234067 (tlog-tiles §Merkle Tree). */
export function encodeTileIndex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RampartError('server.internal', `tile index ${n} is not a non-negative integer`);
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** The path of a tile below the log prefix: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`. */
export function tilePath(ref: TileRef): string {
  const partial = ref.width === TILE_WIDTH ? '' : `.p/${ref.width}`;
  return `tile/${ref.level}/${encodeTileIndex(ref.index)}${partial}`;
}

/**
 * Parses the part of a tile URL after `tile/`. The path comes from the network: anything not in
 * the canonical form (leading zeros, missing "x", width 0 or 256, level > 63) is refused, so one
 * resource has one URL. Returns undefined for a malformed path.
 */
export function parseTilePath(path: string): TileRef | undefined {
  const m = /^(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*)([0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(path);
  if (!m) return undefined;
  const level = m[1] === 'entries' ? 'entries' : Number(m[1]);
  if (level !== 'entries' && level > 63) return undefined;
  const groups = [...(m[2] ?? '').split('/').filter((g) => g !== '').map((g) => g.slice(1)), m[3] as string];
  // A leading all-zero group is not canonical (index 5 is "005", never "x000/005").
  if (groups.length > 1 && groups[0] === '000') return undefined;
  if (groups.length > 5) return undefined; // beyond 2^53
  const index = Number(groups.join(''));
  const width = m[4] === undefined ? TILE_WIDTH : Number(m[4]);
  if (!Number.isSafeInteger(index) || width < 1 || width > TILE_WIDTH || (m[4] !== undefined && width === TILE_WIDTH)) return undefined;
  return { level, index, width };
}

/**
 * How many hashes tile `index` at `level` holds in a tree of `size` leaves: 256 when full, the
 * partial width floor(size / 256^level) mod 256 for the rightmost one, 0 when it does not exist.
 */
export function tileWidthAt(level: number, index: number, size: number): number {
  const nodes = Math.floor(size / TILE_WIDTH ** level);
  return Math.max(0, Math.min(TILE_WIDTH, nodes - index * TILE_WIDTH));
}

/** Concatenated length-prefixed entries (tlog-tiles §Log entries). */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const e of entries) {
    if (e.length > MAX_ENTRY_BYTES) throw new AuditError('audit.range_invalid', `an entry of ${e.length} bytes does not fit an entry bundle`, { details: { length: e.length } });
    total += 2 + e.length;
  }
  const out = Buffer.alloc(total);
  let at = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, at);
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Splits an entry bundle; it comes from the network, so truncation is an error, not a crash. */
export function decodeEntryBundle(bundle: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bundle.length) {
    if (at + 2 > bundle.length) throw new AuditError('audit.proof_invalid', 'entry bundle ends inside a length prefix', { details: { offset: at } });
    const len = ((bundle[at] as number) << 8) | (bundle[at + 1] as number);
    if (at + 2 + len > bundle.length) throw new AuditError('audit.proof_invalid', 'entry bundle ends inside an entry', { details: { offset: at, length: len } });
    out.push(bundle.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return out;
}

/** Concatenated 32-byte hashes: the body of a hash tile. */
export function encodeHashTile(hashes: readonly Hash[]): Uint8Array {
  const out = new Uint8Array(hashes.length * HASH_SIZE);
  hashes.forEach((h, i) => out.set(h, i * HASH_SIZE));
  return out;
}

/** The hashes of a tile body, as views into it (no copies): the caller must not change `body`. */
export function decodeHashTile(body: Uint8Array): Hash[] {
  if (body.length % HASH_SIZE !== 0) throw new AuditError('audit.proof_invalid', 'a hash tile is not a whole number of hashes', { details: { length: body.length } });
  const out: Hash[] = [];
  for (let i = 0; i < body.length; i += HASH_SIZE) out.push(body.subarray(i, i + HASH_SIZE));
  return out;
}

function largestPowerOfTwoAtMost(n: number): number {
  let k = 1;
  while (k * 2 <= n) k *= 2;
  return k;
}

/**
 * The interior nodes the log persists: the root of every perfect subtree of height ≥ 4, written
 * by integration in the same transaction as the leaves that complete it (./log.ts). That is n/8
 * rows for n leaves; below height 4 a proof hashes at most 15 leaves of one aligned block of 16
 * instead. Heights 8, 16, … are the hashes of tiles at levels 1, 2, … (tlog-tiles).
 */
export const STORED_NODE_MIN_HEIGHT = 4;

/** A perfect subtree: leaves [index·2^height, (index+1)·2^height). */
export interface NodeRef {
  readonly height: number;
  readonly index: number;
}

export const nodeKey = (height: number, index: number): string => `${height}/${index}`;

/** What tiles and proofs are read from: stored leaf hashes and stored interior nodes. */
export interface TreeReader {
  /** Leaf hashes [start, end) in leaf order; missing leaves are absent. */
  leafHashes(start: number, end: number): Promise<Hash[]>;
  /** The stored roots of `refs` (heights ≥ {@link STORED_NODE_MIN_HEIGHT}) by {@link nodeKey}; missing ones are absent. */
  nodes(refs: readonly NodeRef[]): Promise<Map<string, Hash>>;
  /** Stored roots at `height` with index in [start, end), in index order; missing ones are absent. */
  nodeRange(height: number, start: number, end: number): Promise<Hash[]>;
}

/** The perfect aligned subtrees MTH(D[lo:hi]) splits into, left to right (RFC 6962 §2.1 recursion). */
function perfectParts(lo: number, hi: number): NodeRef[] {
  const parts: NodeRef[] = [];
  let at = lo;
  while (at < hi) {
    const k = largestPowerOfTwoAtMost(hi - at);
    if (at % k !== 0) throw new RampartError('server.internal', `[${lo}, ${hi}) is not a subtree of the RFC 6962 recursion`);
    parts.push({ height: Math.log2(k), index: at / k });
    at += k;
  }
  return parts;
}

function missing(what: string, details: Record<string, unknown>): AuditError {
  return new AuditError('audit.log_inconsistent', `the store is missing ${what}`, { details });
}

/**
 * Hash tiles and proofs computed from the stored tree, with no state of its own: a proof is one
 * read of at most ~2·log2(n) stored nodes and at most two reads of ≤ 16 leaf hashes, the same
 * right after a restart as after a million proofs.
 *
 * The caller bounds every request by a tree size it has checked (the latest checkpoint); a node
 * or leaf missing below that size means the store lost part of the tree: `audit.log_inconsistent`.
 */
export class TileHashes {
  readonly #reader: TreeReader;

  constructor(reader: TreeReader) {
    this.#reader = reader;
  }

  /** The first `width` hashes of tile `index` at `level`. */
  async tile(level: number, index: number, width: number): Promise<Hash[]> {
    const start = index * TILE_WIDTH;
    const got = level === 0 ? await this.#reader.leafHashes(start, start + width) : await this.#reader.nodeRange(level * TILE_HEIGHT, start, start + width);
    if (got.length !== width) throw missing(`hashes of tile ${level}/${index}`, { level, index, width, returned: got.length });
    return got;
  }

  /** The stored hash of leaf `index`. */
  async leafHash(index: number): Promise<Hash> {
    const [h] = await this.#reader.leafHashes(index, index + 1);
    if (!h) throw missing(`leaf ${index}`, { index });
    return h;
  }

  /** PATH(index, D[size]) — RFC 9162 §2.1.3.1 — leaf level first, from the stored tree. */
  async inclusionProof(index: number, size: number): Promise<Hash[]> {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
      throw new AuditError('audit.range_invalid', `index ${index} is not in a tree of size ${size}`, { details: { index, size } });
    }
    return this.#hashRanges(inclusionRanges(index, size));
  }

  /** PROOF(size1, D[size2]) — RFC 9162 §2.1.4.1 — leaf level first, from the stored tree. */
  async consistencyProof(size1: number, size2: number): Promise<Hash[]> {
    if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size1 > size2) {
      throw new AuditError('audit.range_invalid', `no consistency proof from ${size1} to ${size2}: need 0 < from ≤ to`, { details: { size1, size2 } });
    }
    return this.#hashRanges(consistencyRanges(size1, size2));
  }

  /**
   * The root of each range, from its perfect parts: stored nodes in one read; parts lower than
   * the stored heights hashed from the leaves of their block of 2^STORED_NODE_MIN_HEIGHT.
   */
  async #hashRanges(ranges: readonly [number, number][]): Promise<Hash[]> {
    const split = ranges.map(([lo, hi]) => perfectParts(lo, hi));
    const all = split.flat();
    const high = all.filter((p) => p.height >= STORED_NODE_MIN_HEIGHT);
    const stored = high.length > 0 ? await this.#reader.nodes(high) : new Map<string, Hash>();
    const leaves = await this.#leavesUnder(all.filter((p) => p.height < STORED_NODE_MIN_HEIGHT));
    const rootOf = (p: NodeRef): Hash => {
      if (p.height >= STORED_NODE_MIN_HEIGHT) {
        const h = stored.get(nodeKey(p.height, p.index));
        if (!h) throw missing(`tree node ${nodeKey(p.height, p.index)}`, { height: p.height, index: p.index });
        return h;
      }
      const first = p.index * 2 ** p.height;
      return rootFromLeafHashes(Array.from({ length: 2 ** p.height }, (_, i) => leaves.get(first + i) as Hash));
    };
    return split.map((parts) => {
      let r = rootOf(parts[parts.length - 1] as NodeRef);
      for (let i = parts.length - 2; i >= 0; i--) r = nodeHash(rootOf(parts[i] as NodeRef), r);
      return r;
    });
  }

  /** Leaf hashes of the given low parts, one read per block of 2^STORED_NODE_MIN_HEIGHT leaves. */
  async #leavesUnder(parts: readonly NodeRef[]): Promise<Map<number, Hash>> {
    const block = 2 ** STORED_NODE_MIN_HEIGHT;
    const spans = new Map<number, [number, number]>();
    for (const p of parts) {
      const lo = p.index * 2 ** p.height;
      const hi = lo + 2 ** p.height;
      const b = Math.floor(lo / block);
      const span = spans.get(b);
      spans.set(b, span ? [Math.min(span[0], lo), Math.max(span[1], hi)] : [lo, hi]);
    }
    const out = new Map<number, Hash>();
    for (const [lo, hi] of spans.values()) {
      const got = await this.#reader.leafHashes(lo, hi);
      if (got.length !== hi - lo) throw missing(`leaves [${lo}, ${hi})`, { start: lo, end: hi, returned: got.length });
      got.forEach((h, i) => out.set(lo + i, h));
    }
    return out;
  }
}
