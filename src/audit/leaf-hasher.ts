/**
 * Leaf hashing on a second thread for the verifier (./verify.ts). Reading entries and building
 * the tree stay on the caller's thread; the leaf hashes of one chunk are computed by a worker
 * while the caller reads the next chunk, so a full verification uses two cores.
 *
 * The worker only computes SHA-256 over byte ranges; the RFC 6962 §2.1 leaf input (0x00 ‖ entry)
 * is assembled here. It runs from source text (`eval`) so it needs no build output of its own.
 */

import { Worker } from 'node:worker_threads';
import type { Hash } from './merkle.js';
import type { LogEntry } from './verify.js';

const HASH_SIZE = 32;
const LEAF_PREFIX = 0x00;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
parentPort.on('message', ({ data, offsets }) => {
  const bytes = new Uint8Array(data);
  const at = new Float64Array(offsets);
  const out = new Uint8Array((at.length - 1) * ${HASH_SIZE});
  for (let i = 0; i + 1 < at.length; i++) out.set(hash('sha256', bytes.subarray(at[i], at[i + 1]), 'buffer'), i * ${HASH_SIZE});
  parentPort.postMessage({ out: out.buffer, data }, [out.buffer, data]);
});
`;

export class LeafHasher {
  readonly #worker: Worker;
  // Answers come back in request order (one worker, one message per request).
  readonly #waiting: { resolve: (b: ArrayBuffer) => void; reject: (e: Error) => void }[] = [];
  // Input buffers come back with their answers and are reused: a fresh multi-megabyte buffer per
  // chunk made the garbage collector the main thread's second-largest cost.
  readonly #spare: ArrayBuffer[] = [];
  #failed: Error | undefined;

  private constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    this.#worker.on('message', ({ out, data }: { out: ArrayBuffer; data: ArrayBuffer }) => {
      this.#spare.push(data);
      this.#waiting.shift()?.resolve(out);
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
   * The leaf hash of each entry, in order. A pruned entry has no content: its slot holds the hash
   * of an empty input and must not be used.
   */
  hash(entries: readonly LogEntry[]): Promise<Hash[]> {
    if (this.#failed) return Promise.reject(this.#failed);
    let bound = 0;
    for (const e of entries) bound += 1 + (e.pruned ? 0 : typeof e.entry === 'string' ? 3 * e.entry.length : e.entry.length);
    let spare = this.#spare.pop();
    if (!spare || spare.byteLength < bound) spare = new ArrayBuffer(Math.max(bound, 2 * (spare?.byteLength ?? 0)));
    const data = Buffer.from(spare);
    const offsets = new Float64Array(entries.length + 1);
    let n = 0;
    entries.forEach((e, i) => {
      offsets[i] = n;
      if (e.pruned) return;
      data[n++] = LEAF_PREFIX;
      if (typeof e.entry === 'string') {
        n += data.write(e.entry, n, 'utf8');
      } else {
        data.set(e.entry, n);
        n += e.entry.length;
      }
    });
    offsets[entries.length] = n;
    return new Promise<ArrayBuffer>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#worker.postMessage({ data: data.buffer, offsets: offsets.buffer }, [data.buffer, offsets.buffer]);
    }).then((out) => {
      const all = new Uint8Array(out);
      return Array.from({ length: entries.length }, (_, i) => all.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
    });
  }

  async close(): Promise<void> {
    this.#failed ??= new Error('the leaf hasher is closed');
    await this.#worker.terminate();
  }
}
