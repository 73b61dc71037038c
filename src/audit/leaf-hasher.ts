/**
 * Leaf hashing on a second thread for the verifier (./verify.ts). Reading entries, checking them
 * and the tree above tile level stay on the caller's thread; the leaf hashes of one chunk are
 * computed by a worker while the caller reads the next chunk, so a full verification uses two
 * cores.
 *
 * The worker computes SHA-256 over byte ranges (the RFC 6962 §2.1 leaf input, 0x00 ‖ entry, is
 * assembled here) and, for every whole tile of 256 entries none of which was pruned, the root of
 * its subtree (255 interior hashes, 0x01 ‖ left ‖ right): the caller then folds one hash per tile
 * instead of one per entry, which was the main thread's largest hashing cost. It runs from source
 * text (`eval`) so it needs no build output of its own.
 */

import { Worker } from 'node:worker_threads';
import { HASH_SIZE, type Hash } from './merkle.js';
import { TILE_WIDTH as TILE } from './tiles.js';
import type { LogEntry } from './verify.js';

const LEAF_PREFIX = 0x00;

// Entries arrive either packed (0x00 ‖ entry back to back, `offsets` between them; a pruned entry
// is an empty range, a real one at least its prefix) or as tlog-tiles entry bundles (`bundles`:
// offset, length and expected entry count of each; a count of −n marks n pruned entries). A
// bundle is split here: each entry's 2-byte length prefix is read and its second byte replaced
// by 0x00, which makes 0x00 ‖ entry contiguous without a copy. A bundle that does not hold
// exactly its count of well-formed entries is flagged in `bad` and its slots left empty: the
// caller then splits it itself and reports what is wrong with it.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
const node = new Uint8Array(1 + 2 * ${HASH_SIZE});
node[0] = 1;
const level = new Uint8Array(${TILE} * ${HASH_SIZE});
parentPort.on('message', ({ data, offsets, bundles }) => {
  const bytes = new Uint8Array(data);
  let from, to, n, bad;
  if (bundles) {
    const meta = new Float64Array(bundles);
    const count = meta.length / 3;
    n = 0;
    for (let b = 0; b < count; b++) n += Math.abs(meta[3 * b + 2]);
    from = new Float64Array(n);
    to = new Float64Array(n);
    bad = new Uint8Array(count);
    for (let b = 0, k = 0; b < count; b++) {
      const width = meta[3 * b + 2];
      if (width < 0) { k -= width; continue; }
      const end = meta[3 * b] + meta[3 * b + 1];
      let p = meta[3 * b];
      let j = 0;
      for (; j < width && p + 2 <= end; j++) {
        const len = (bytes[p] << 8) | bytes[p + 1];
        if (p + 2 + len > end) break;
        bytes[p + 1] = 0;
        from[k + j] = p + 1;
        to[k + j] = p + 2 + len;
        p += 2 + len;
      }
      if (j !== width || p !== end) {
        bad[b] = 1;
        from.fill(0, k, k + width);
        to.fill(0, k, k + width);
      }
      k += width;
    }
  } else {
    const at = new Float64Array(offsets);
    n = at.length - 1;
    from = at.subarray(0, n);
    to = at.subarray(1);
    bad = new Uint8Array(0);
  }
  const tiles = Math.floor(n / ${TILE});
  const out = new Uint8Array((n + tiles) * ${HASH_SIZE});
  for (let i = 0; i < n; i++) if (to[i] > from[i]) out.set(hash('sha256', bytes.subarray(from[i], to[i]), 'buffer'), i * ${HASH_SIZE});
  const roots = new Uint8Array(tiles);
  for (let t = 0; t < tiles; t++) {
    let whole = true;
    for (let i = t * ${TILE}; i < (t + 1) * ${TILE} && whole; i++) whole = to[i] > from[i];
    if (!whole) continue;
    level.set(out.subarray(t * ${TILE} * ${HASH_SIZE}, (t + 1) * ${TILE} * ${HASH_SIZE}));
    for (let width = ${TILE}; width > 1; width /= 2) {
      for (let j = 0; j < width / 2; j++) {
        node.set(level.subarray(2 * j * ${HASH_SIZE}, (2 * j + 2) * ${HASH_SIZE}), 1);
        level.set(hash('sha256', node, 'buffer'), j * ${HASH_SIZE});
      }
    }
    out.set(level.subarray(0, ${HASH_SIZE}), (n + t) * ${HASH_SIZE});
    roots[t] = 1;
  }
  parentPort.postMessage({ out: out.buffer, roots: roots.buffer, bad: bad.buffer, data }, [out.buffer, roots.buffer, bad.buffer, data]);
});
`;

/** What the worker answers for one batch of entries. */
export interface HashedEntries {
  /** The leaf hashes, 32 bytes each, in entry order (a pruned entry's slot must not be used). */
  readonly leaves: Uint8Array;
  /**
   * `tileRoots[t]` is MTH of entries [256·t, 256·t + 256) of the batch, when all 256 are in it and
   * none was pruned; otherwise undefined.
   */
  readonly tileRoots: readonly (Hash | undefined)[];
  /** Leaf hash `i` as a view into {@link HashedEntries.leaves}. */
  leaf(i: number): Hash;
  /**
   * For {@link LeafHasher.hashBundles}: the bundles that do not hold exactly their count of
   * well-formed entries (their slots are empty).
   */
  readonly badBundles: readonly number[];
}

/** One tlog-tiles entry bundle to split and hash: its body and its entry count, or pruned. */
export type BundleInput = { readonly body: Uint8Array; readonly width: number } | { readonly prunedWidth: number };

type Answer = { out: ArrayBuffer; roots: ArrayBuffer; bad: ArrayBuffer };

export class LeafHasher {
  readonly #worker: Worker;
  // Answers come back in request order (one worker, one message per request).
  readonly #waiting: { resolve: (answer: Answer) => void; reject: (e: Error) => void }[] = [];
  // Input buffers come back with their answers and are reused: a fresh multi-megabyte buffer per
  // chunk made the garbage collector the main thread's second-largest cost.
  readonly #spare: ArrayBuffer[] = [];
  #failed: Error | undefined;

  private constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    this.#worker.on('message', ({ data, ...answer }: Answer & { data: ArrayBuffer }) => {
      this.#spare.push(data);
      this.#waiting.shift()?.resolve(answer);
    });
    const fail = (err: Error): void => {
      this.#failed ??= err;
      for (const w of this.#waiting.splice(0)) w.reject(err);
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', () => fail(new Error('the leaf hashing worker stopped')));
  }

  static start(): LeafHasher {
    return new LeafHasher();
  }

  /**
   * The leaf hash of each entry, in order, and the root of each whole unpruned tile. A pruned
   * entry has no content: its slot holds the hash of an empty input and must not be used.
   */
  hash(entries: readonly LogEntry[]): Promise<HashedEntries> {
    if (this.#failed) return Promise.reject(this.#failed);
    let bound = 0;
    for (const e of entries) bound += 1 + (e.pruned ? 0 : typeof e.entry === 'string' ? 3 * e.entry.length : e.entry.length);
    const data = this.#buffer(bound);
    const offsets = new Float64Array(entries.length + 1);
    let n = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as LogEntry;
      offsets[i] = n;
      if (e.pruned) continue;
      data[n++] = LEAF_PREFIX;
      if (typeof e.entry === 'string') {
        n += data.write(e.entry, n, 'utf8');
      } else {
        data.set(e.entry, n);
        n += e.entry.length;
      }
    }
    offsets[entries.length] = n;
    return this.#send({ data: data.buffer as ArrayBuffer, offsets: offsets.buffer }, [data.buffer as ArrayBuffer, offsets.buffer], entries.length);
  }

  /**
   * {@link LeafHasher.hash} for entries still in their tlog-tiles bundles: the worker splits them
   * (one copy per bundle here instead of one per entry). Slots are numbered across the bundles
   * in order; a pruned bundle's slots are empty.
   */
  hashBundles(bundles: readonly BundleInput[]): Promise<HashedEntries> {
    if (this.#failed) return Promise.reject(this.#failed);
    let bound = 0;
    for (const b of bundles) bound += 'body' in b ? b.body.length : 0;
    const data = this.#buffer(bound);
    const meta = new Float64Array(3 * bundles.length);
    let n = 0;
    let slots = 0;
    bundles.forEach((b, i) => {
      if ('body' in b) {
        data.set(b.body, n);
        meta.set([n, b.body.length, b.width], 3 * i);
        n += b.body.length;
        slots += b.width;
      } else {
        meta.set([n, 0, -b.prunedWidth], 3 * i);
        slots += b.prunedWidth;
      }
    });
    return this.#send({ data: data.buffer as ArrayBuffer, bundles: meta.buffer }, [data.buffer as ArrayBuffer, meta.buffer], slots);
  }

  /** A transfer buffer of at least `bound` bytes, reusing one the worker sent back. */
  #buffer(bound: number): Buffer {
    let spare = this.#spare.pop();
    if (!spare || spare.byteLength < bound) spare = new ArrayBuffer(Math.max(bound, 2 * (spare?.byteLength ?? 0)));
    return Buffer.from(spare);
  }

  #send(message: Record<string, ArrayBuffer>, transfer: ArrayBuffer[], n: number): Promise<HashedEntries> {
    return new Promise<Answer>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#worker.postMessage(message, transfer);
    }).then(({ out, roots, bad }) => {
      const leaves = new Uint8Array(out, 0, n * HASH_SIZE);
      const all = new Uint8Array(out);
      const tileRoots = Array.from(new Uint8Array(roots), (whole, t) => (whole ? all.subarray((n + t) * HASH_SIZE, (n + t + 1) * HASH_SIZE) : undefined));
      const badBundles: number[] = [];
      new Uint8Array(bad).forEach((flag, b) => flag && badBundles.push(b));
      return { leaves, tileRoots, badBundles, leaf: (i: number) => leaves.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE) };
    });
  }

  async close(): Promise<void> {
    this.#failed ??= new Error('the leaf hasher is closed');
    await this.#worker.terminate();
  }
}
