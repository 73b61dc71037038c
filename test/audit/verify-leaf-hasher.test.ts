import fc from 'fast-check';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BundleInput, LeafHasher } from '../../src/audit/leaf-hasher.js';
import { encodeEntryBundle } from '../../src/audit/tiles.js';
import { leafHash, leafHashOfText, rootFromLeafHashes } from '../../src/audit/merkle.js';
import { type LogEntry, type LogSource, verifyLog } from '../../src/audit/verify.js';
import { type LogFixture, openLogFixture } from '../support/audit-log.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * The worker-thread leaf hasher must be invisible: the same hashes as merkle.ts, and verifyLog
 * reports exactly the same problems, at the same first bad index, with and without it.
 */

describe('LeafHasher', () => {
  const hasher = LeafHasher.start();
  afterAll(() => hasher.close());

  it('computes the RFC 6962 leaf hash of text (any Unicode) and bytes, chunk by chunk', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.uint8Array({ maxLength: 300 })), { minLength: 1, maxLength: 40 }),
        async (entries) => {
          const rows: LogEntry[] = entries.map((entry, index) => ({ index, entry }));
          const got = await hasher.hash(rows);
          expect(rows.map((_, i) => Buffer.from(got.leaf(i)).toString('hex'))).toEqual(
            entries.map((e) => Buffer.from(typeof e === 'string' ? leafHashOfText(e) : leafHash(e)).toString('hex')),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps the order of concurrent requests and skips pruned entries', async () => {
    const batches = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 50 }, (_, i): LogEntry => (i % 7 === 3 ? { index: i, entry: '', pruned: true, storedLeafHash: new Uint8Array(32) } : { index: i, entry: `{"b":${b},"i":${i}}` })),
    );
    const results = await Promise.all(batches.map((rows) => hasher.hash(rows)));
    results.forEach((hashes, b) => {
      batches[b]!.forEach((row, i) => {
        if (!row.pruned) expect(Buffer.from(hashes.leaf(i)).equals(Buffer.from(leafHashOfText(row.entry as string)))).toBe(true);
      });
    });
  });

  it('gives the root of every whole tile with no pruned entry, and no root otherwise', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 1100 }), fc.uniqueArray(fc.integer({ min: 0, max: 1099 }), { maxLength: 3 }), async (n, prunedAt) => {
        const rows = Array.from({ length: n }, (_, i): LogEntry => (prunedAt.includes(i) ? { index: i, entry: '', pruned: true, storedLeafHash: new Uint8Array(32) } : { index: i, entry: `{"i":${i}}` }));
        const got = await hasher.hash(rows);
        expect(got.tileRoots).toHaveLength(Math.floor(n / 256));
        got.tileRoots.forEach((root, t) => {
          const tile = rows.slice(t * 256, (t + 1) * 256);
          if (tile.some((r) => r.pruned)) {
            expect(root).toBeUndefined();
          } else {
            expect(root && Buffer.from(root).toString('hex')).toBe(Buffer.from(rootFromLeafHashes(tile.map((r) => leafHashOfText(r.entry as string)))).toString('hex'));
          }
        });
      }),
      { numRuns: 25 },
    );
  });

  it('splits entry bundles itself: the same leaves and roots, and flags a bundle that is not exactly its entries', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 700 }),
        fc.constantFrom('none', 'torn', 'short', 'long', 'pruned'),
        async (entries, damage) => {
          const bundles = Array.from({ length: Math.ceil(entries.length / 256) }, (_, b) => {
            const slice = entries.slice(b * 256, (b + 1) * 256);
            return { body: encodeEntryBundle(slice), width: slice.length };
          });
          const last = bundles.length - 1;
          const b0 = bundles[last]!;
          const input: BundleInput[] = [...bundles];
          if (damage === 'torn') input[last] = { body: b0.body.subarray(0, b0.body.length - 1), width: b0.width };
          if (damage === 'short') input[last] = { body: b0.body, width: b0.width + 1 };
          if (damage === 'long') input[last] = { body: Buffer.concat([b0.body, encodeEntryBundle([Uint8Array.of(1)])]), width: b0.width };
          if (damage === 'pruned') input[last] = { prunedWidth: b0.width };
          const got = await hasher.hashBundles(input);
          const broken = damage === 'torn' || damage === 'short' || damage === 'long';
          expect(got.badBundles).toEqual(broken ? [last] : []);
          const intact = damage === 'none' ? entries.length : last * 256;
          for (let i = 0; i < intact; i++) expect(Buffer.from(got.leaf(i)).equals(Buffer.from(leafHash(entries[i]!)))).toBe(true);
          got.tileRoots.forEach((root, t) => {
            if (t >= Math.floor(intact / 256)) expect(root).toBeUndefined();
            else expect(Buffer.from(root!).equals(Buffer.from(rootFromLeafHashes(entries.slice(t * 256, (t + 1) * 256).map(leafHash))))).toBe(true);
          });
          // The caller's bodies are left as they were (the worker works on its own copy).
          expect(Buffer.from(bundles[0]!.body).equals(Buffer.from(encodeEntryBundle(entries.slice(0, 256))))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses work once closed instead of answering', async () => {
    const h = LeafHasher.start();
    await h.close();
    await expect(h.hash([{ index: 0, entry: 'x' }])).rejects.toThrow(/closed/);
  });
});

describe.each(TEST_DATABASES)('verifyLog with the leaf hashing worker ($name)', (target) => {
  let log: LogFixture;
  // Chunks of 256 so that reading, worker hashing and tree building overlap across chunks.
  let source: LogSource;
  const both = async () => {
    const inline = await verifyLog(source, { verifier: log.verifier, hashWorker: false });
    const worker = await verifyLog(source, { verifier: log.verifier, hashWorker: true });
    expect(worker).toEqual(inline);
    return worker;
  };

  beforeEach(async () => {
    log = await openLogFixture(target);
    source = { ...log.source, chunk: 256 };
    await log.grow(100);
    await log.grow(300);
    await log.grow(200);
    const clean = await both();
    expect(clean).toMatchObject({ ok: true, entriesChecked: 600, checkpointsChecked: 3, firstBadIndex: undefined });
  });
  afterEach(async () => {
    await log.close();
  });

  it('reports an altered payload at its index', async () => {
    await log.setPayload(517, '{"forged":true}');
    const r = await both();
    expect(r.firstBadIndex).toBe(517);
    expect(r.problems[0]).toMatchObject({ kind: 'leaf_hash_mismatch', index: 517 });
  });

  it('reports an altered payload with a recomputed leaf hash over the checkpoint range', async () => {
    await log.setPayload(300, '{"forged":true}', { rehash: true });
    const r = await both();
    expect(r.problems[0]).toMatchObject({ kind: 'root_mismatch', range: [100, 400], size: 400 });
  });

  it('reports a deleted row in a later chunk', async () => {
    await log.database.db.deleteFrom('audit_events').where('leaf_index', '=', 300).execute();
    const r = await both();
    expect(r.problems[0]).toMatchObject({ kind: 'entry_missing', index: 300 });
    expect(r.firstBadIndex).toBe(300);
  });
});
