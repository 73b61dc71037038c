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
 * tile hashes (O(log n) tile reads) and checked against merkle.ts's leaf-reading proofs in tests.
 */

import { AuditError, RampartError } from '../core/errors.js';
import { HASH_SIZE, type Hash, type LeafSource, consistencyRanges, inclusionRanges, nodeHash, rootFromLeafHashes } from './merkle.js';

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

export function decodeHashTile(body: Uint8Array): Hash[] {
  if (body.length % HASH_SIZE !== 0) throw new AuditError('audit.proof_invalid', 'a hash tile is not a whole number of hashes', { details: { length: body.length } });
  const out: Hash[] = [];
  for (let i = 0; i < body.length; i += HASH_SIZE) out.push(body.slice(i, i + HASH_SIZE));
  return out;
}

function largestPowerOfTwoAtMost(n: number): number {
  let k = 1;
  while (k * 2 <= n) k *= 2;
  return k;
}


/**
 * Hash tiles computed from the stored leaf hashes, and proofs computed from tiles.
 *
 * The caller bounds every request by a tree size it has checked (the latest checkpoint): asking
 * for hashes beyond the tree is a programming error here. The roots of full tiles never change,
 * so they are memoized (bounded), which makes a level-1 tile cost 256 cached lookups instead of
 * 65,536 leaf reads.
 */
export class TileHashes {
  readonly #leaves: LeafSource;
  readonly #roots = new Map<string, Hash>();
  readonly #maxCached: number;

  constructor(leaves: LeafSource, options: { maxCachedRoots?: number } = {}) {
    this.#leaves = leaves;
    this.#maxCached = options.maxCachedRoots ?? 1_000_000;
  }

  /** The first `width` hashes of tile `index` at `level`. */
  async tile(level: number, index: number, width: number): Promise<Hash[]> {
    const start = index * TILE_WIDTH;
    if (level === 0) {
      const got = await this.#leaves(start, start + width);
      if (got.length !== width) {
        throw new AuditError('audit.log_inconsistent', `the store returned ${got.length} leaf hashes for tile 0/${index}, expected ${width}`, {
          details: { level, index, width, returned: got.length },
        });
      }
      return [...got];
    }
    const out: Hash[] = [];
    for (let i = 0; i < width; i++) out.push(await this.#fullTileRoot(level - 1, start + i));
    return out;
  }

  #remember(key: string, root: Hash): void {
    if (this.#roots.size >= this.#maxCached) this.#roots.delete(this.#roots.keys().next().value as string);
    this.#roots.set(key, root);
  }

  /** MTH of the full tile `index` at `level`: one hash of tile level + 1. */
  async #fullTileRoot(level: number, index: number): Promise<Hash> {
    const key = `${level}/${index}`;
    const cached = this.#roots.get(key);
    if (cached) return cached;
    const root = rootFromLeafHashes(await this.tile(level, index, TILE_WIDTH));
    this.#remember(key, root);
    return root;
  }

  /** The root of the perfect subtree of 2^height leaves starting at leaf index·2^height. */
  async node(height: number, index: number): Promise<Hash> {
    const level = Math.floor(height / TILE_HEIGHT);
    const count = 2 ** (height - level * TILE_HEIGHT);
    const first = index * count;
    const tileIndex = Math.floor(first / TILE_WIDTH);
    const offset = first % TILE_WIDTH;
    const hashes = await this.tile(level, tileIndex, offset + count);
    return rootFromLeafHashes(hashes.slice(offset, offset + count));
  }

  /**
   * MTH(D[lo:hi]) for a subtree of the RFC 6962 recursion (lo is a multiple of a power of two
   * at least hi − lo): the perfect aligned subtrees it splits into, folded from the right as
   * the recursion does.
   */
  async subtreeRoot(lo: number, hi: number): Promise<Hash> {
    const parts: Hash[] = [];
    let at = lo;
    while (at < hi) {
      const k = largestPowerOfTwoAtMost(hi - at);
      if (at % k !== 0) throw new RampartError('server.internal', `[${lo}, ${hi}) is not a subtree of the RFC 6962 recursion`);
      parts.push(await this.node(Math.log2(k), at / k));
      at += k;
    }
    let r = parts.pop() as Hash;
    while (parts.length > 0) r = nodeHash(parts.pop() as Hash, r);
    return r;
  }

  /** PATH(index, D[size]) — RFC 9162 §2.1.3.1 — leaf level first, from tile hashes. */
  async inclusionProof(index: number, size: number): Promise<Hash[]> {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
      throw new AuditError('audit.range_invalid', `index ${index} is not in a tree of size ${size}`, { details: { index, size } });
    }
    return this.#hashRanges(inclusionRanges(index, size));
  }

  /** PROOF(size1, D[size2]) — RFC 9162 §2.1.4.1 — leaf level first, from tile hashes. */
  async consistencyProof(size1: number, size2: number): Promise<Hash[]> {
    if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size1 > size2) {
      throw new AuditError('audit.range_invalid', `no consistency proof from ${size1} to ${size2}: need 0 < from ≤ to`, { details: { size1, size2 } });
    }
    return this.#hashRanges(consistencyRanges(size1, size2));
  }

  async #hashRanges(ranges: [number, number][]): Promise<Hash[]> {
    const out: Hash[] = [];
    for (const [lo, hi] of ranges) out.push(await this.subtreeRoot(lo, hi));
    return out;
  }
}
