/**
 * Merkle tree hashing, proofs and proof verification for the audit log, as specified by
 * RFC 6962 §2.1 and its successor RFC 9162 §2.1 (Certificate Transparency 2.0).
 *
 * The audit log is only tamper-evident if every party computes exactly the same hashes, so this
 * module follows the RFCs bit for bit and is checked against the test vectors of
 * github.com/transparency-dev/merkle. Where the RFCs leave an edge case open (empty trees, proofs
 * between equal sizes) it behaves like `proof/verify.go` of that project.
 *
 * Pure: no I/O. Proof generation reads leaf hashes through a caller-supplied {@link LeafSource}.
 *
 * Sizes and indices are JavaScript numbers restricted to safe integers (< 2^53). Verification does
 * its bit arithmetic on bigints because `>>` and `&` on numbers truncate to 32 bits.
 */

import { hash } from 'node:crypto';
import { AuditError, RampartError } from '../core/errors.js';

/** A SHA-256 digest: always 32 bytes. */
export type Hash = Uint8Array;

export const HASH_SIZE = 32;

/**
 * Reads the leaf hashes with indices in [start, end), in order. Proof generation calls it once per
 * subtree it needs, in chunks of at most {@link MAX_LEAVES_PER_FETCH}, and never asks for a leaf
 * twice within one proof.
 */
export type LeafSource = (start: number, end: number) => Promise<Hash[]> | Hash[];

/** Bounds the memory one subtree hash computation holds, whatever the tree size. */
export const MAX_LEAVES_PER_FETCH = 4096;

// RFC 6962 §2.1: the one-byte prefixes keep a leaf hash from ever equalling an interior node hash
// (second-preimage resistance). The prefixed input is assembled in a scratch buffer and hashed in
// one call (`crypto.hash`): a verifier does two hashes per entry, and allocating a Hash object and
// a concatenation for each was most of its time. Hashing is synchronous, so one buffer suffices.
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeInput[0] = NODE_PREFIX;
let leafInput = Buffer.alloc(4096);

function sha256(data: Uint8Array): Hash {
  return hash('sha256', data, 'buffer');
}

function leafScratch(bytes: number): Buffer {
  if (leafInput.length < bytes) leafInput = Buffer.alloc(Math.max(bytes, 2 * leafInput.length));
  leafInput[0] = LEAF_PREFIX;
  return leafInput;
}

/** MTH({d(0)}) = SHA-256(0x00 ‖ d(0)) — RFC 6962 §2.1. */
export function leafHash(entry: Uint8Array): Hash {
  const input = leafScratch(1 + entry.length);
  input.set(entry, 1);
  return sha256(input.subarray(0, 1 + entry.length));
}

/** {@link leafHash} of the UTF-8 encoding of `text`, without materializing the encoding. */
export function leafHashOfText(text: string): Hash {
  const input = leafScratch(1 + 3 * text.length);
  const n = input.write(text, 1, 'utf8');
  return sha256(input.subarray(0, 1 + n));
}

/** Interior node: SHA-256(0x01 ‖ left ‖ right) — RFC 6962 §2.1. */
export function nodeHash(left: Hash, right: Hash): Hash {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    throw new RampartError('server.internal', `node hash inputs must be ${HASH_SIZE} bytes`, { details: { left: left.length, right: right.length } });
  }
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return sha256(nodeInput);
}

/** MTH({}) = SHA-256() — RFC 6962 §2.1: the root of the tree with no leaves. */
export function emptyRoot(): Hash {
  return sha256(new Uint8Array(0));
}

export function toHex(h: Uint8Array): string {
  return Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');
}

/** Compares two byte strings in time independent of where they differ. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

// ---------------------------------------------------------------------------------------------
// Argument checks. Sizes, indices and hashes reach the verifiers straight from the network, so
// every malformed value becomes a coded error before any arithmetic is done with it.

export function rangeError(message: string, details: Record<string, unknown>): AuditError {
  return new AuditError('audit.range_invalid', message, { details });
}

export function proofError(message: string, details: Record<string, unknown>): AuditError {
  return new AuditError('audit.proof_invalid', message, { details });
}

export function requireCount(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw rangeError(`${name} must be a non-negative safe integer`, { [name]: describe(value) });
  }
  return value;
}

export function requireHash(name: string, value: unknown): Hash {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw proofError(`${name} is not a ${HASH_SIZE}-byte hash`, {
      field: name,
      length: value instanceof Uint8Array ? value.length : null,
    });
  }
  return value;
}

export function requireProof(value: unknown): Hash[] {
  if (!Array.isArray(value)) throw proofError('proof must be an array of hashes', { field: 'proof' });
  return value.map((h, i) => requireHash(`proof[${i}]`, h));
}

function describe(value: unknown): unknown {
  return typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean' ? value : typeof value;
}

// ---------------------------------------------------------------------------------------------
// Bit helpers on bigints (exact for every safe integer).

export function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

function onesCount(x: bigint): number {
  let n = 0;
  for (const c of x.toString(2)) if (c === '1') n++;
  return n;
}

function trailingZeros(x: bigint): number {
  const s = x.toString(2);
  return s.length - 1 - s.lastIndexOf('1');
}

function popcountNumber(x: number): number {
  let n = 0;
  for (let v = x; v > 0; v = Math.floor(v / 2)) n += v % 2;
  return n;
}

/** The k of RFC 6962 §2.1: the largest power of two smaller than n (n > 1). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// ---------------------------------------------------------------------------------------------
// Compact range

export interface CompactRangeJSON {
  size: number;
  hashes: string[];
}

/**
 * The right edge of an append-only Merkle tree: the roots of the perfect subtrees that the leaves
 * [0, size) decompose into, largest (leftmost) first — one per set bit of `size`. This is all a log
 * sequencer must persist to compute the RFC 6962 §2.1 root of every tree size as leaves are
 * appended, in O(log n) space, without rereading earlier leaves.
 */
export class CompactRange {
  #size: number;
  readonly #hashes: Hash[];

  private constructor(size: number, hashes: Hash[]) {
    this.#size = size;
    this.#hashes = hashes;
  }

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** Restores a persisted range. The input is untrusted storage: anything malformed is rejected. */
  static fromJSON(j: CompactRangeJSON): CompactRange {
    if (typeof j !== 'object' || j === null) {
      throw rangeError('compact range must be an object', { value: describe(j) });
    }
    const size = requireCount('size', j.size);
    const hex: unknown = j.hashes;
    if (!Array.isArray(hex)) throw rangeError('compact range hashes must be an array', { size });
    const want = popcountNumber(size);
    if (hex.length !== want) {
      throw rangeError(`a compact range of size ${size} has ${want} hashes, got ${hex.length}`, {
        size,
        hashes: hex.length,
        expectedHashes: want,
      });
    }
    const hashes = hex.map((h, i) => {
      if (typeof h !== 'string' || !/^[0-9a-fA-F]{64}$/.test(h)) {
        throw rangeError(`compact range hash ${i} is not ${HASH_SIZE} bytes of hex`, { size, index: i });
      }
      return new Uint8Array(Buffer.from(h, 'hex'));
    });
    return new CompactRange(size, hashes);
  }

  toJSON(): CompactRangeJSON {
    return { size: this.#size, hashes: this.#hashes.map(toHex) };
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Adds the next leaf hash, merging equal-height subtrees as binary addition carries. Each merge
   * completes a perfect subtree; `onNode` receives its root with its height and index (it covers
   * leaves [index·2^height, (index+1)·2^height)), which is how the log persists the tree's
   * interior nodes as they are created (./tree-nodes.ts).
   */
  append(leaf: Hash, onNode?: (height: number, index: number, hash: Hash) => void): void {
    if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_SIZE) {
      throw new RampartError('server.internal', `leaf hash must be ${HASH_SIZE} bytes`, {
        details: { length: leaf instanceof Uint8Array ? leaf.length : null },
      });
    }
    if (this.#size >= Number.MAX_SAFE_INTEGER) {
      throw rangeError('tree size would exceed the largest safe integer', { size: this.#size });
    }
    let h: Hash = leaf;
    let height = 0;
    for (let s = this.#size; s % 2 === 1; s = Math.floor(s / 2)) {
      h = nodeHash(this.#hashes.pop() as Hash, h);
      height++;
      onNode?.(height, Math.floor(this.#size / 2 ** height), h);
    }
    // The caller keeps its leaf; the range keeps its own copy.
    this.#hashes.push(h === leaf ? leaf.slice() : h);
    this.#size += 1;
  }

  /**
   * MTH(D[0:size]) — RFC 6962 §2.1. The left subtree of every split is perfect, so folding the
   * subtree roots from the right reproduces the recursive definition.
   */
  root(): Hash {
    const n = this.#hashes.length;
    if (n === 0) return emptyRoot();
    let r = this.#hashes[n - 1] as Hash;
    for (let i = n - 2; i >= 0; i--) r = nodeHash(this.#hashes[i] as Hash, r);
    return Uint8Array.from(r);
  }
}

/** MTH(D[n]) — RFC 6962 §2.1 — over already-hashed leaves. */
export function rootFromLeafHashes(leaves: readonly Hash[]): Hash {
  const r = CompactRange.empty();
  for (const l of leaves) r.append(l);
  return r.root();
}

// ---------------------------------------------------------------------------------------------
// Proof generation

/** MTH(D[start:end]) read through `leaves`, in bounded chunks. */
async function subtreeRoot(start: number, end: number, leaves: LeafSource): Promise<Hash> {
  const acc = CompactRange.empty();
  for (let lo = start; lo < end; lo += MAX_LEAVES_PER_FETCH) {
    const hi = Math.min(end, lo + MAX_LEAVES_PER_FETCH);
    const got: unknown = await leaves(lo, hi);
    if (!Array.isArray(got) || got.length !== hi - lo) {
      throw rangeError(`the log returned ${Array.isArray(got) ? got.length : 'no'} leaves for [${lo}, ${hi})`, {
        start: lo,
        end: hi,
        returned: Array.isArray(got) ? got.length : null,
      });
    }
    for (const h of got) acc.append(h as Hash);
  }
  return acc.root();
}

/**
 * The subtrees [lo, hi) whose roots form PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf level
 * first. Arguments must already be validated (0 ≤ index < size).
 */
export function inclusionRanges(index: number, size: number): [number, number][] {
  const ranges: [number, number][] = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
    }
  }
  return ranges.reverse();
}

/**
 * The subtrees [lo, hi) whose roots form PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1), leaf level
 * first. Arguments must already be validated (0 < size1 ≤ size2).
 */
export function consistencyRanges(size1: number, size2: number): [number, number][] {
  const ranges: [number, number][] = [];
  let m = size1;
  let lo = 0;
  let hi = size2;
  let whole = true;
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo);
    if (m <= k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
      m -= k;
      whole = false;
    }
  }
  // SUBPROOF(m, D[m], false) = {MTH(D[m])}; with b = true the verifier already holds that root.
  if (!whole) ranges.push([lo, hi]);
  return ranges.reverse();
}

/** MTH of each range [lo, hi), in order, read through `leaves`. */
export async function hashRanges(ranges: [number, number][], leaves: LeafSource): Promise<Hash[]> {
  const out: Hash[] = [];
  for (const [s, e] of ranges) out.push(await subtreeRoot(s, e, leaves));
  return out;
}

/**
 * PATH(index, D[size]) — RFC 9162 §2.1.3.1 (RFC 6962 §2.1.1): the sibling of every node on the
 * way from leaf `index` to the root, leaf level first.
 *
 * The siblings partition every leaf except `index` itself, so computing them from leaf hashes alone
 * reads size − 1 leaves; each is read once, per sibling subtree, in chunks.
 */
export async function inclusionProof(index: number, size: number, leaves: LeafSource): Promise<Hash[]> {
  requireCount('index', index);
  requireCount('size', size);
  if (index >= size) throw rangeError(`index ${index} is not in a tree of size ${size}`, { index, size });
  return hashRanges(inclusionRanges(index, size), leaves);
}

/**
 * PROOF(size1, D[size2]) = SUBPROOF(size1, D[size2], true) — RFC 9162 §2.1.4.1 (RFC 6962 §2.1.2),
 * leaf level first. The nodes cover disjoint leaf ranges, so at most size2 leaves are read.
 *
 * A proof from the empty tree is refused, as transparency-dev/merkle does: every tree extends the
 * empty tree, so there is nothing to prove.
 */
export async function consistencyProof(size1: number, size2: number, leaves: LeafSource): Promise<Hash[]> {
  requireCount('size1', size1);
  requireCount('size2', size2);
  if (size1 > size2) throw rangeError(`size1 ${size1} is larger than size2 ${size2}`, { size1, size2 });
  if (size1 === 0) throw rangeError('a consistency proof from the empty tree is meaningless', { size1, size2 });
  return hashRanges(consistencyRanges(size1, size2), leaves);
}

// ---------------------------------------------------------------------------------------------
// Verification
//
// Both verifiers check the proof length exactly before hashing, like transparency-dev/merkle: it
// depends only on the sizes, so extra or missing nodes are reported as such instead of surfacing
// as a root mismatch.

/**
 * Splits an inclusion proof for leaf `index` in a tree of `size` where the paths to `index` and
 * `size − 1` diverge: `inner` nodes below (left or right siblings), `border` nodes above (always
 * left siblings, on the tree's right edge).
 */
function decomposeInclusion(index: bigint, size: bigint): { inner: number; border: number } {
  const inner = bitLength(index ^ (size - 1n));
  return { inner, border: onesCount(index >> BigInt(inner)) };
}

function chainInner(seed: Hash, proof: readonly Hash[], index: bigint): Hash {
  let r = seed;
  proof.forEach((p, i) => {
    r = ((index >> BigInt(i)) & 1n) === 0n ? nodeHash(r, p) : nodeHash(p, r);
  });
  return r;
}

/** Like {@link chainInner} but skips right siblings: yields the same subtree in the older tree. */
function chainInnerRight(seed: Hash, proof: readonly Hash[], index: bigint): Hash {
  let r = seed;
  proof.forEach((p, i) => {
    if (((index >> BigInt(i)) & 1n) === 1n) r = nodeHash(p, r);
  });
  return r;
}

function chainBorderRight(seed: Hash, proof: readonly Hash[]): Hash {
  let r = seed;
  for (const p of proof) r = nodeHash(p, r);
  return r;
}

/**
 * The root that an inclusion proof implies for leaf hash `leaf` at `index` in a tree of `size` —
 * the value RFC 9162 §2.1.3.2 compares with the expected root, computed by splitting the proof as
 * transparency-dev/merkle does rather than by shifting `fn`/`sn` step by step (same result).
 * Throws if the arguments or the proof are malformed.
 */
export function rootFromInclusionProof(index: number, size: number, leaf: Hash, proof: readonly Hash[]): Hash {
  requireCount('index', index);
  requireCount('size', size);
  if (index >= size) throw rangeError(`index ${index} is not in a tree of size ${size}`, { index, size });
  const seed = requireHash('leaf', leaf);
  const path = requireProof(proof);
  const { inner, border } = decomposeInclusion(BigInt(index), BigInt(size));
  if (path.length !== inner + border) {
    throw proofError(`inclusion proof has ${path.length} hashes, expected ${inner + border}`, {
      index,
      size,
      proofLength: path.length,
      expectedProofLength: inner + border,
    });
  }
  return chainBorderRight(chainInner(seed, path.slice(0, inner), BigInt(index)), path.slice(inner));
}

/**
 * Verifies that `leaf` is the leaf hash at `index` in the tree of `size` with root `root` —
 * RFC 9162 §2.1.3.2. Returns normally only if the proof verifies; otherwise throws
 * `audit.range_invalid` (index/size unusable) or `audit.proof_invalid`.
 */
export function verifyInclusion(index: number, size: number, leaf: Hash, proof: readonly Hash[], root: Hash): void {
  requireCount('index', index);
  requireCount('size', size);
  if (index >= size) throw rangeError(`index ${index} is not in a tree of size ${size}`, { index, size });
  const want = requireHash('root', root);
  const got = rootFromInclusionProof(index, size, leaf, proof);
  if (!bytesEqual(got, want)) {
    throw proofError('inclusion proof does not lead to the expected root', {
      index,
      size,
      leaf: toHex(leaf),
      expectedRoot: toHex(want),
      computedRoot: toHex(got),
    });
  }
}

/**
 * Verifies that the tree of `size2` with root `root2` extends the tree of `size1` with root
 * `root1` — RFC 9162 §2.1.4.2: the proof must rebuild both roots.
 *
 * Edge cases follow transparency-dev/merkle `proof/verify.go`: size1 > size2 and size1 = 0 are
 * refused (`audit.range_invalid`) — a client that has never seen the log has nothing to check and
 * should not call this; size1 = size2 requires an empty proof and identical roots; otherwise an
 * empty proof is refused.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Hash[],
  root1: Hash,
  root2: Hash,
): void {
  requireCount('size1', size1);
  requireCount('size2', size2);
  if (size1 > size2) throw rangeError(`size1 ${size1} is larger than size2 ${size2}`, { size1, size2 });
  if (size1 === 0) throw rangeError('a consistency proof from the empty tree is meaningless', { size1, size2 });
  const r1 = requireHash('root1', root1);
  const r2 = requireHash('root2', root2);
  const path = requireProof(proof);

  if (size1 === size2) {
    if (path.length > 0) {
      throw proofError('size1 equals size2 but the proof is not empty', { size1, size2, proofLength: path.length });
    }
    if (!bytesEqual(r1, r2)) {
      throw proofError('size1 equals size2 but the roots differ', {
        size1,
        size2,
        root1: toHex(r1),
        root2: toHex(r2),
      });
    }
    return;
  }
  if (path.length === 0) throw proofError('consistency proof is empty', { size1, size2 });

  const m = BigInt(size1);
  const n = BigInt(size2);
  // The proof starts at the root of the rightmost perfect subtree of the old tree (height
  // `shift`); it is omitted when the old tree is itself perfect, since the verifier has root1
  // (RFC 9162 §2.1.4.2 step 2).
  const { inner: fork, border } = decomposeInclusion(m - 1n, n);
  const shift = trailingZeros(m);
  const inner = fork - shift;
  const perfect = m === 1n << BigInt(shift);
  const first = perfect ? 0 : 1;
  const expectedLength = first + inner + border;
  if (path.length !== expectedLength) {
    throw proofError(`consistency proof has ${path.length} hashes, expected ${expectedLength}`, {
      size1,
      size2,
      proofLength: path.length,
      expectedProofLength: expectedLength,
    });
  }
  const seed = perfect ? r1 : (path[0] as Hash);
  const rest = path.slice(first);
  const mask = (m - 1n) >> BigInt(shift);

  if (!perfect) {
    const got1 = chainBorderRight(chainInnerRight(seed, rest.slice(0, inner), mask), rest.slice(inner));
    if (!bytesEqual(got1, r1)) {
      throw proofError('consistency proof does not lead to root1', {
        size1,
        size2,
        expectedRoot: toHex(r1),
        computedRoot: toHex(got1),
      });
    }
  }
  const got2 = chainBorderRight(chainInner(seed, rest.slice(0, inner), mask), rest.slice(inner));
  if (!bytesEqual(got2, r2)) {
    throw proofError('consistency proof does not lead to root2', {
      size1,
      size2,
      expectedRoot: toHex(r2),
      computedRoot: toHex(got2),
    });
  }
}
