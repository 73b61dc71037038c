/**
 * Subtrees of the audit log's Merkle tree and the two proofs about them, as specified by
 * draft-ietf-plants-merkle-tree-certs §4 ("Subtrees"; section numbers as in -05 and later). The
 * text followed is the working group's editor's copy (github.com/ietf-plants-wg/merkle-tree-certs
 * at d7362d6, 2026-08-20), which, unlike -05, admits the empty subtree [x, x), as
 * transparency-dev/merkle does.
 *
 * A subtree [start, end) is the Merkle tree MTH(D[start:end]) built over an aligned interval of the
 * log (§4.1). Its hash names many entries at once: a *subtree inclusion proof* (§4.3) shows that an
 * entry is in the subtree, with a path only as long as the subtree is tall; a *subtree consistency
 * proof* (§4.4) shows that the subtree is part of the log whose signed checkpoint has root `root`.
 * Together they let a verifier who trusts one subtree hash — because it checked it once against a
 * checkpoint — prove many entries with short proofs, and any interval of the log is covered by at
 * most two subtrees (§4.5).
 *
 * Checked against the `subtreeinclusion/` and `subtreeconsistency/` vectors of
 * github.com/transparency-dev/merkle and the accumulated vectors of the draft's Appendix C. Where
 * upstream accepts a "root" that is not a 32-byte hash (it never looks at the tree root of an empty
 * subtree, nor the draft, and compares the roots of [0, size) without checking their length), this
 * module refuses it, as ./merkle.ts does: a verifier that says "ok" about a value that cannot be a
 * tree root is giving auditors false evidence.
 *
 * Pure: no I/O. Sizes and indices are safe integers, like ./merkle.ts; halving is done with
 * division because `>>` on numbers truncates to 32 bits.
 */

import { AuditError } from '../core/errors.js';
import {
  type Hash,
  type LeafSource,
  bitLength,
  bytesEqual,
  emptyRoot,
  hashRanges,
  inclusionRanges,
  nodeHash,
  proofError,
  rangeError,
  requireCount,
  requireHash,
  requireProof,
  rootFromInclusionProof,
  splitPoint,
  toHex,
} from './merkle.js';

/** BIT_CEIL(n): the smallest power of two ≥ n, and 1 for 0 (§4.1). Exact for safe integers. */
function bitCeil(n: number): number {
  let c = 1;
  while (c < n) c *= 2;
  return c;
}

/**
 * Whether [start, end) is a subtree (§4.1): 0 ≤ start ≤ end and start is a multiple of
 * BIT_CEIL(end − start). The alignment is what makes the subtree's root, or the roots it splits
 * into, nodes of every tree of size ≥ end, so that a consistency proof exists. [0, x) and [x, x)
 * are subtrees for every x. False for anything that is not a pair of safe integers.
 */
export function isValidSubtree(start: number, end: number): boolean {
  return Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && start % bitCeil(end - start) === 0;
}

/** Sizes, indices and subtree bounds come from the network: each check is a coded error. */
function requireSubtree(start: unknown, end: unknown): { start: number; end: number } {
  const s = requireCount('start', start);
  const e = requireCount('end', end);
  if (s > e) throw rangeError(`subtree [${s}, ${e}) ends before it starts`, { start: s, end: e });
  if (!isValidSubtree(s, e)) {
    throw rangeError(`[${s}, ${e}) is not a subtree: start must be a multiple of BIT_CEIL(end − start) = ${bitCeil(e - s)}`, {
      start: s,
      end: e,
    });
  }
  return { start: s, end: e };
}

function requireEntryOf(index: unknown, start: number, end: number): number {
  const i = requireCount('index', index);
  if (i < start || i >= end) throw rangeError(`index ${i} is not in the subtree [${start}, ${end})`, { index: i, start, end });
  return i;
}

function requireWithin(start: number, end: number, size: unknown): number {
  const n = requireCount('size', size);
  if (end > n) throw rangeError(`subtree [${start}, ${end}) ends beyond the tree of size ${n}`, { start, end, size: n });
  return n;
}

// ---------------------------------------------------------------------------------------------
// Proof shapes: the subtrees [lo, hi) whose hashes make up each proof, in proof order.

/**
 * The ranges of a subtree inclusion proof (§4.3): PATH(index − start, D[start:end]) of
 * RFC 9162 §2.1.3.1, leaf level first, moved back to the log's indices. Throws
 * `audit.range_invalid` unless [start, end) is a subtree holding `index`.
 */
export function subtreeInclusionRanges(index: number, start: number, end: number): [number, number][] {
  const t = requireSubtree(start, end);
  const i = requireEntryOf(index, t.start, t.end);
  return inclusionRanges(i - t.start, t.end - t.start).map(([lo, hi]) => [t.start + lo, t.start + hi]);
}

/**
 * The ranges of SUBTREE_PROOF(start, end, D[size]) (§4.4.1), leaf level first; none for the empty
 * subtree. Throws `audit.range_invalid` unless [start, end) is a subtree and end ≤ size.
 *
 * The recursion of §4.4.1 walks down from [0, size): a child that holds the whole subtree is
 * entered and its sibling goes into the proof; when the split point falls inside the subtree
 * (only possible for start = 0 of the current node) the walk continues in the right child with
 * the subtree's right part, and the part's own root must then be sent (b = false), since the
 * verifier knows only the root of the whole subtree.
 */
export function subtreeConsistencyRanges(start: number, end: number, size: number): [number, number][] {
  const t = requireSubtree(start, end);
  const n = requireWithin(t.start, t.end, size);
  const ranges: [number, number][] = [];
  if (t.start === t.end) return ranges;
  // Invariant lo ≤ s < end ≤ hi: every step shrinks [lo, hi) and the loop ends at s = lo, end = hi.
  let s = t.start;
  let lo = 0;
  let hi = n;
  let known = true;
  while (s !== lo || t.end !== hi) {
    const mid = lo + splitPoint(hi - lo);
    if (t.end <= mid) {
      ranges.push([mid, hi]);
      hi = mid;
    } else if (mid <= s) {
      ranges.push([lo, mid]);
      lo = mid;
    } else {
      ranges.push([lo, mid]);
      lo = mid;
      s = mid;
      known = false;
    }
  }
  if (!known) ranges.push([lo, hi]);
  return ranges.reverse();
}

// ---------------------------------------------------------------------------------------------
// Generation, reading leaf hashes through a LeafSource (./merkle.ts), each at most once per hash.

/** MTH(D[start:end]) — §4.1 — of a subtree; HASH() for the empty subtree. */
export async function subtreeHash(start: number, end: number, leaves: LeafSource): Promise<Hash> {
  const t = requireSubtree(start, end);
  if (t.start === t.end) return emptyRoot();
  const [h] = await hashRanges([[t.start, t.end]], leaves);
  return h as Hash;
}

/** The subtree inclusion proof for entry `index` of [start, end) — §4.3 — leaf level first. */
export async function subtreeInclusionProof(index: number, start: number, end: number, leaves: LeafSource): Promise<Hash[]> {
  return hashRanges(subtreeInclusionRanges(index, start, end), leaves);
}

/**
 * SUBTREE_PROOF(start, end, D[size]) — §4.4.1 — leaf level first: empty for the empty subtree and
 * for [0, size) itself. With start = 0 it is PROOF(end, D[size]) of RFC 9162 §2.1.4.1; with
 * end = start + 1 it is PATH(start, D[size]).
 */
export async function subtreeConsistencyProof(start: number, end: number, size: number, leaves: LeafSource): Promise<Hash[]> {
  return hashRanges(subtreeConsistencyRanges(start, end, size), leaves);
}

// ---------------------------------------------------------------------------------------------
// Verification

/**
 * The subtree hash a subtree inclusion proof implies — §4.3.2: the RFC 9162 §2.1.3.2 computation
 * with leaf index `index − start` in a tree of `end − start` leaves. Throws `audit.range_invalid`
 * if [start, end) is not a subtree or does not hold `index`, `audit.proof_invalid` if the leaf
 * or the proof is malformed or has the wrong length.
 */
export function rootFromSubtreeInclusionProof(index: number, start: number, end: number, leaf: Hash, proof: readonly Hash[]): Hash {
  const t = requireSubtree(start, end);
  const i = requireEntryOf(index, t.start, t.end);
  try {
    return rootFromInclusionProof(i - t.start, t.end - t.start, leaf, proof);
  } catch (err) {
    // The relative index and size are the subtree's; say which subtree, in the log's indices.
    if (err instanceof AuditError) {
      throw new AuditError(err.code, err.message, { details: { ...err.details, index: i, start: t.start, end: t.end }, cause: err });
    }
    throw err;
  }
}

/**
 * Verifies that `leaf` is the hash of entry `index` of the subtree [start, end) whose hash is
 * `subtreeRoot` — §4.3.3. Returns normally only if the proof verifies; otherwise throws
 * `audit.range_invalid` (not a subtree, or `index` outside it) or `audit.proof_invalid`.
 *
 * This proves membership in the subtree only: trust `subtreeRoot` first, by
 * {@link verifySubtreeConsistency} against a signed checkpoint.
 */
export function verifySubtreeInclusion(index: number, start: number, end: number, leaf: Hash, proof: readonly Hash[], subtreeRoot: Hash): void {
  const t = requireSubtree(start, end);
  const i = requireEntryOf(index, t.start, t.end);
  const want = requireHash('subtreeRoot', subtreeRoot);
  const got = rootFromSubtreeInclusionProof(i, t.start, t.end, leaf, proof);
  if (!bytesEqual(got, want)) {
    throw proofError('subtree inclusion proof does not lead to the expected subtree hash', {
      index: i,
      start: t.start,
      end: t.end,
      leaf: toHex(leaf),
      expectedRoot: toHex(want),
      computedRoot: toHex(got),
    });
  }
}

const isOdd = (x: number): boolean => x % 2 === 1;

/**
 * Verifies that the subtree [start, end) with hash `subtreeRoot` is part of the tree of `size`
 * leaves with root `root` — §4.4.3. Returns normally only if the proof verifies; otherwise throws
 * `audit.range_invalid` (not a subtree, or end > size) or `audit.proof_invalid`.
 *
 * The empty subtree is part of every tree: its proof must be empty and its hash HASH() (§4.4.3
 * step 2), and `root` must still be a 32-byte hash. The proof length is checked against
 * {@link subtreeConsistencyRanges} before any hashing, so that added or missing hashes are
 * reported as such rather than as a root mismatch; with the exact length, the draft's checks on
 * `tn` can only fail on a bug, and are kept as that guard.
 */
export function verifySubtreeConsistency(
  start: number,
  end: number,
  size: number,
  proof: readonly Hash[],
  subtreeRoot: Hash,
  root: Hash,
): void {
  const t = requireSubtree(start, end);
  const n = requireWithin(t.start, t.end, size);
  const node = requireHash('subtreeRoot', subtreeRoot);
  const top = requireHash('root', root);
  const path = requireProof(proof);
  const at = { start: t.start, end: t.end, size: n };

  if (t.start === t.end) {
    if (path.length > 0) {
      throw proofError(`subtree consistency proof has ${path.length} hashes, expected 0 for an empty subtree`, {
        ...at,
        proofLength: path.length,
        expectedProofLength: 0,
      });
    }
    if (!bytesEqual(node, emptyRoot())) {
      throw proofError('the hash of an empty subtree is the hash of the empty string', {
        ...at,
        expectedRoot: toHex(emptyRoot()),
        computedRoot: toHex(node),
      });
    }
    return;
  }
  const expectedLength = subtreeConsistencyRanges(t.start, t.end, n).length;
  if (path.length !== expectedLength) {
    throw proofError(`subtree consistency proof has ${path.length} hashes, expected ${expectedLength}`, {
      ...at,
      proofLength: path.length,
      expectedProofLength: expectedLength,
    });
  }

  // §4.4.3 steps 3–9. fn, sn and tn are the positions of the subtree's first and last entries and
  // of the tree's last entry at the current level; fr rebuilds the subtree hash, sr the root.
  let fn = t.start;
  let sn = t.end - 1;
  let tn = n - 1;
  const shift = (): void => {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
    tn = Math.floor(tn / 2);
  };
  if (sn === tn) {
    while (fn !== sn) shift();
  } else {
    while (fn !== sn && isOdd(sn)) shift();
  }
  let next = 0;
  let fr: Hash;
  let sr: Hash;
  if (fn === sn) {
    fr = node;
    sr = node;
  } else {
    fr = path[0] as Hash;
    sr = fr;
    next = 1;
  }
  for (; next < path.length; next++) {
    const c = path[next] as Hash;
    if (tn === 0) throw proofError('subtree consistency proof is longer than the tree is tall', { ...at, proofLength: path.length });
    if (isOdd(sn) || sn === tn) {
      if (fn < sn) fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(sn)) shift();
    } else {
      sr = nodeHash(sr, c);
    }
    shift();
  }
  if (tn !== 0) throw proofError('subtree consistency proof is shorter than the tree is tall', { ...at, proofLength: path.length });
  if (!bytesEqual(fr, node)) {
    throw proofError('subtree consistency proof does not lead to the subtree hash', {
      ...at,
      expectedRoot: toHex(node),
      computedRoot: toHex(fr),
    });
  }
  if (!bytesEqual(sr, top)) {
    throw proofError('subtree consistency proof does not lead to the tree root', {
      ...at,
      expectedRoot: toHex(top),
      computedRoot: toHex(sr),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Covering an interval

/**
 * Two adjacent subtrees [leftStart, mid) and [mid, end) that together cover the interval
 * [start, end) — §4.5.1. Nothing past `end` is covered; before `start`, fewer entries than half of
 * the left subtree (when the interval is not empty). An interval of at most one entry is returned
 * as itself followed by the empty subtree [end, end). Throws `audit.range_invalid` unless
 * 0 ≤ start ≤ end are safe integers.
 */
export function coveringSubtrees(start: number, end: number): [[number, number], [number, number]] {
  const s = requireCount('start', start);
  const e = requireCount('end', end);
  if (s > e) throw rangeError(`interval [${s}, ${e}) ends before it starts`, { start: s, end: e });
  if (e - s <= 1) return [[s, e], [e, e]];
  // The paths of the first and last entries diverge at height `split`: the right subtree starts at
  // the leftmost entry under the divergence point's right child, and the left one at the lowest
  // ancestor of [start, mid). Bit operations on bigints: the values may exceed 32 bits.
  const first = BigInt(s);
  const last = BigInt(e - 1);
  const split = BigInt(bitLength(first ^ last) - 1);
  const mask = (1n << split) - 1n;
  const mid = last & ~mask;
  const leftSplit = BigInt(bitLength(~first & mask));
  const leftStart = first & ~((1n << leftSplit) - 1n);
  return [
    [Number(leftStart), Number(mid)],
    [Number(mid), e],
  ];
}
