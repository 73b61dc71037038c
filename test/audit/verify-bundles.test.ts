import { describe, expect, it } from 'vitest';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { type Hash, leafHash, rootFromLeafHashes } from '../../src/audit/merkle.js';
import { generateNoteKey, parseVerifierKey } from '../../src/audit/note.js';
import { TILE_WIDTH, TileHashes, encodeEntryBundle, encodeHashTile, parseTilePath } from '../../src/audit/tiles.js';
import { type VerifyReport, tlogSource, verifyLog } from '../../src/audit/verify.js';
import { memoryTreeReader } from './memory-tree.js';

/**
 * The online path as `rampart audit verify` runs it: tlogSource hands the verifier unsplit entry
 * bundles, and the hashing worker splits them, hashes the leaves and folds each whole tile into
 * its root, so the verifier's thread adds one hash per 256 entries. Every attack must be reported
 * exactly as the inline path (bundles split and every leaf folded on the verifier's thread)
 * reports it: same problems, same first bad index. 66,600 entries: 260 whole level-0 tiles (one
 * whole level-1 tile) and a partial one.
 */

const SIZE = 66_600;
const ENTRIES = Array.from({ length: SIZE }, (_, i) => Buffer.from(`{"i":${i},"pad":"${'x'.repeat(i % 97)}"}`));
const LEAVES: Hash[] = ENTRIES.map((e) => leafHash(e));
const signer = generateNoteKey('rampart.test/verify-bundles').signer;
const verifier = parseVerifierKey(signer.verifierKey);
const NOTE = signCheckpoint({ size: SIZE, rootHash: rootFromLeafHashes(LEAVES) }, signer);
const TILES = new TileHashes(memoryTreeReader(LEAVES));

interface Tamper {
  /** Entries as served (the leaves and the checkpoint stay those of the real log). */
  entries?: (entries: Buffer[]) => void;
  /** A served bundle's body, replaced. */
  bundle?: (index: number, body: Uint8Array) => Uint8Array;
  /** Bundles answered 410 Gone (retention pruned them). */
  pruned?: readonly number[];
  /** A served hash tile, changed in place. */
  tile?: (level: number, index: number, hashes: Hash[]) => void;
}

function fetcher(tamper: Tamper = {}): (path: string) => Promise<Uint8Array> {
  const entries = [...ENTRIES];
  tamper.entries?.(entries);
  return async (path) => {
    if (path === 'checkpoint') return Buffer.from(NOTE);
    const ref = parseTilePath(path.slice('tile/'.length));
    if (!ref) throw Object.assign(new Error(`no ${path}`), { status: 404 });
    if (ref.level === 'entries') {
      if (tamper.pruned?.includes(ref.index)) throw Object.assign(new Error('pruned'), { status: 410 });
      const body = encodeEntryBundle(entries.slice(ref.index * TILE_WIDTH, ref.index * TILE_WIDTH + ref.width));
      return tamper.bundle ? tamper.bundle(ref.index, body) : body;
    }
    const hashes = (await TILES.tile(ref.level, ref.index, ref.width)).map((h) => h.slice());
    tamper.tile?.(ref.level, ref.index, hashes);
    return encodeHashTile(hashes);
  };
}

/** Verifies with the worker and inline, asserts both reports are the same, and returns it. */
async function both(tamper?: Tamper): Promise<VerifyReport> {
  const worker = await verifyLog(tlogSource(fetcher(tamper)), { verifier, hashWorker: true });
  const inline = await verifyLog(tlogSource(fetcher(tamper)), { verifier, hashWorker: false });
  expect(worker).toEqual(inline);
  return worker;
}

describe('verifyLog over unsplit entry bundles (worker-computed tile roots)', () => {
  it('verifies the whole log and every tile', async () => {
    const r = await both();
    expect(r).toMatchObject({ ok: true, entriesChecked: SIZE, entriesPruned: 0, problems: [] });
    // 260 whole and 1 partial level-0 tiles, 1 whole and 1 partial level-1 tile, 1 partial level-2.
    expect(r.tilesChecked).toBe(260 + 1 + 1 + 1 + 1);
    expect(r.latest?.size).toBe(SIZE);
  }, 60_000);

  it('detects two entries swapped inside a whole tile, at the first of them', async () => {
    const r = await both({ entries: (e) => void ([e[1283], e[1284]] = [e[1284] as Buffer, e[1283] as Buffer]) });
    expect(r.ok).toBe(false);
    expect(r.firstBadIndex).toBe(1283);
    expect(r.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'root_mismatch', size: SIZE }),
        // A tile names its first differing hash; the level-1 tile, the tile holding the pair.
        expect.objectContaining({ kind: 'tile_mismatch', index: 1283 }),
        expect.objectContaining({ kind: 'tile_mismatch', range: [1280, 1536] }),
      ]),
    );
  }, 60_000);

  it('detects an altered payload in a whole tile and in the partial one', async () => {
    for (const at of [40_000, SIZE - 3]) {
      const r = await both({ entries: (e) => void (e[at] = Buffer.from('{"forged":true}')) });
      expect(r.ok).toBe(false);
      expect(r.firstBadIndex).toBe(at);
      expect(r.problems).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'tile_mismatch', index: at }), expect.objectContaining({ kind: 'root_mismatch' })]));
    }
  }, 60_000);

  it('detects a wrong served hash tile at level 0 and level 1 although the entries are right', async () => {
    const level0 = await both({ tile: (level, index, h) => void (level === 0 && index === 100 && (h[7] = new Uint8Array(32))) });
    expect(level0.problems).toEqual([expect.objectContaining({ kind: 'tile_mismatch', index: 100 * 256 + 7 })]);
    const level1 = await both({ tile: (level, index, h) => void (level === 1 && index === 0 && (h[9] = new Uint8Array(32))) });
    expect(level1.problems).toEqual([expect.objectContaining({ kind: 'tile_mismatch', range: [9 * 256, 10 * 256] })]);
  }, 60_000);

  it('reports a torn bundle, and one with an entry too many, at the bundle', async () => {
    const torn = await both({ bundle: (i, body) => (i === 30 ? body.subarray(0, body.length - 5) : body) });
    expect(torn.problems[0]).toMatchObject({ kind: 'entry_missing', index: 30 * 256 });
    expect(torn.firstBadIndex).toBe(30 * 256);
    const first = await both({ bundle: (i, body) => (i === 64 ? body.subarray(0, 1) : body) });
    expect(first.problems[0]).toMatchObject({ kind: 'entry_missing', index: 64 * 256 });
    const extra = await both({ bundle: (i, body) => (i === 31 ? Buffer.concat([body, encodeEntryBundle([Buffer.from('{}')])]) : body) });
    expect(extra.problems[0]).toMatchObject({ kind: 'entry_missing', index: 31 * 256 });
  }, 60_000);

  it('checks pruned bundles by the tree only, and still catches a forged leaf hash for one', async () => {
    const pruned = await both({ pruned: [3, 200] });
    expect(pruned).toMatchObject({ ok: true, entriesChecked: SIZE, entriesPruned: 512 });
    // The served level-0 tile is what stands in for a pruned bundle: forge it and the tree breaks.
    const forged = await both({ pruned: [3], tile: (level, index, h) => void (level === 0 && index === 3 && (h[5] = new Uint8Array(32))) });
    expect(forged.ok).toBe(false);
    expect(forged.problems).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'root_mismatch', size: SIZE })]));
  }, 60_000);
});
