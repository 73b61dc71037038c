import { describe, expect, it } from 'vitest';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { type Hash, leafHash, rootFromLeafHashes } from '../../src/audit/merkle.js';
import { generateNoteKey, parseVerifierKey } from '../../src/audit/note.js';
import { TileHashes } from '../../src/audit/tiles.js';
import { type LogSource, verifyLog } from '../../src/audit/verify.js';
import { memoryTreeReader } from './memory-tree.js';

/**
 * verifyLog against a source that serves tiles, on a tree large enough for full level-1 tiles and
 * a partial level-2 tile (70,000 entries): the verifier rebuilds every tile from the entries (full
 * tiles' roots from the tree nodes CompactRange completes) and reports a tile that differs at the
 * range it covers. Sources read in chunks larger than one bundle.
 */

const SIZE = 70_000;
const ENTRIES = Array.from({ length: SIZE }, (_, i) => `{"i":${i}}`);
const LEAVES: Hash[] = ENTRIES.map((e) => leafHash(Buffer.from(e)));
const signer = generateNoteKey('rampart.test/verify-tiles').signer;
const verifier = parseVerifierKey(signer.verifierKey);
const NOTE = signCheckpoint({ size: SIZE, rootHash: rootFromLeafHashes(LEAVES) }, signer);

function source(options: { chunk?: number; tamperTile?: { level: number; index: number } } = {}): LogSource & { tiles: string[] } {
  const tiles = new TileHashes(memoryTreeReader(LEAVES));
  const asked: string[] = [];
  return {
    tiles: asked,
    ...(options.chunk === undefined ? {} : { chunk: options.chunk }),
    checkpoints: async () => [NOTE],
    size: async () => SIZE,
    entries: async (start, end) => ENTRIES.slice(start, end).map((entry, k) => ({ index: start + k, entry })),
    async tile(level, index, width) {
      asked.push(`${level}/${index}/${width}`);
      const got = await tiles.tile(level, index, width);
      const t = options.tamperTile;
      if (t && t.level === level && t.index === index) got[3] = new Uint8Array(32);
      return got;
    },
  };
}

describe('verifyLog with tiles', () => {
  it('checks every tile of a 70,000-entry log, whatever the read chunk', async () => {
    for (const chunk of [undefined, 4096, 1000]) {
      const s = source({ chunk });
      const report = await verifyLog(s, { verifier });
      expect(report).toMatchObject({ ok: true, entriesChecked: SIZE, problems: [] });
      // 273 full and 1 partial level-0 tiles, 1 full and 1 partial level-1 tile, 1 partial level-2 tile.
      expect(report.tilesChecked).toBe(273 + 1 + 1 + 1 + 1);
      expect(s.tiles).toEqual(expect.arrayContaining(['1/0/256', '0/273/112', '1/1/17', '2/0/1']));
    }
  }, 60_000);

  it('names the leaves a differing level-1 tile hash covers', async () => {
    const report = await verifyLog(source({ tamperTile: { level: 1, index: 0 } }), { verifier });
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'tile_mismatch', range: [3 * 256, 4 * 256] })]);
    expect(report.firstBadIndex).toBe(768);
  }, 30_000);

  it('names the entry a differing level-0 tile hash stands for', async () => {
    const report = await verifyLog(source({ tamperTile: { level: 0, index: 200 } }), { verifier });
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'tile_mismatch', index: 200 * 256 + 3 })]);
  }, 30_000);
});
