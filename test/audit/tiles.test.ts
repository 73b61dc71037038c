import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Hash, consistencyProof, inclusionProof, leafHash, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import {
  TileHashes,
  decodeEntryBundle,
  decodeHashTile,
  encodeEntryBundle,
  encodeHashTile,
  encodeTileIndex,
  parseTilePath,
  tilePath,
  tileWidthAt,
} from '../../src/audit/tiles.js';
import { memoryTreeReader } from './memory-tree.js';

/** Synthetic leaf hashes: leaf i = SHA-256(0x00 ‖ "leaf i"), as merkle.ts would hash entries. */
const LEAVES: Hash[] = Array.from({ length: 70_000 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
const source = (start: number, end: number): Hash[] => LEAVES.slice(start, end);
const hex = (h: Uint8Array): string => Buffer.from(h).toString('hex');

describe('tile paths (tlog-tiles §Merkle Tree)', () => {
  it('encode the index in 3-digit groups with x prefixes', () => {
    expect(encodeTileIndex(1234067)).toBe('x001/x234/067');
    expect(encodeTileIndex(0)).toBe('000');
    expect(encodeTileIndex(5)).toBe('005');
    expect(encodeTileIndex(1000)).toBe('x001/000');
    expect(tilePath({ level: 0, index: 1234067, width: 256 })).toBe('tile/0/x001/x234/067');
    expect(tilePath({ level: 'entries', index: 1, width: 3 })).toBe('tile/entries/001.p/3');
  });

  it('parse back to the same tile, for any level, index and width', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 63 }), fc.constant('entries' as const)),
        fc.nat({ max: 2 ** 40 }),
        fc.integer({ min: 1, max: 256 }),
        (level, index, width) => {
          const path = tilePath({ level, index, width });
          expect(parseTilePath(path.slice('tile/'.length))).toEqual({ level, index, width });
        },
      ),
    );
  });

  it('refuse non-canonical paths, so a tile has exactly one URL', () => {
    for (const bad of ['0/1', '0/0001', '0/x000/001', '0/001/002', '00/001', '64/001', '0/001.p/0', '0/001.p/256', '0/001.p/007', 'entries/x1/001', '0/001/', 'x/001']) {
      expect(parseTilePath(bad), bad).toBeUndefined();
    }
  });

  it('give the widths of the spec example: a tree of 70,000', () => {
    expect(tileWidthAt(0, 272, 70_000)).toBe(256);
    expect(tileWidthAt(0, 273, 70_000)).toBe(112);
    expect(tileWidthAt(0, 274, 70_000)).toBe(0);
    expect(tileWidthAt(1, 0, 70_000)).toBe(256);
    expect(tileWidthAt(1, 1, 70_000)).toBe(17);
    expect(tileWidthAt(2, 0, 70_000)).toBe(1);
    expect(tileWidthAt(3, 0, 70_000)).toBe(0);
  });
});

describe('entry bundles and hash tiles', () => {
  it('round-trip: uint16 big-endian length, then the bytes', () => {
    expect(Buffer.from(encodeEntryBundle([Buffer.from('ab'), Buffer.from('')])).toString('hex')).toBe('000261620000');
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (entries) => {
        expect(decodeEntryBundle(encodeEntryBundle(entries)).map(hex)).toEqual(entries.map(hex));
      }),
    );
    expect(() => decodeEntryBundle(Uint8Array.of(0, 5, 1))).toThrow(/ends inside an entry/);
    expect(decodeHashTile(encodeHashTile(LEAVES.slice(0, 3))).map(hex)).toEqual(LEAVES.slice(0, 3).map(hex));
  });
});

describe('TileHashes', () => {
  const reader = memoryTreeReader(LEAVES);
  const tiles = new TileHashes(reader);

  it('level 0 holds leaf hashes; level 1 the roots of full level-0 tiles', async () => {
    expect((await tiles.tile(0, 2, 5)).map(hex)).toEqual(LEAVES.slice(512, 517).map(hex));
    const level1 = await tiles.tile(1, 0, 256);
    for (const j of [0, 1, 100, 255]) expect(hex(level1[j] as Hash)).toBe(hex(rootFromLeafHashes(LEAVES.slice(256 * j, 256 * j + 256))));
    const level2 = await tiles.tile(2, 0, 1);
    expect(hex(level2[0] as Hash)).toBe(hex(rootFromLeafHashes(LEAVES.slice(0, 65_536))));
  });

  it('builds the same inclusion proofs as merkle.ts reading every leaf', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1200 }).chain((n) => fc.tuple(fc.constant(n), fc.nat({ max: n - 1 }))), async ([size, index]) => {
        const proof = await tiles.inclusionProof(index, size);
        expect(proof.map(hex)).toEqual((await inclusionProof(index, size, source)).map(hex));
        verifyInclusion(index, size, LEAVES[index] as Hash, proof, rootFromLeafHashes(LEAVES.slice(0, size)));
      }),
      { numRuns: 200 },
    );
  });

  it('builds the same consistency proofs as merkle.ts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1200 }).chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n))), async ([m, n]) => {
        const proof = await tiles.consistencyProof(m, n);
        expect(proof.map(hex)).toEqual((await consistencyProof(m, n, source)).map(hex));
        verifyConsistency(m, n, proof, rootFromLeafHashes(LEAVES.slice(0, m)), rootFromLeafHashes(LEAVES.slice(0, n)));
      }),
      { numRuns: 200 },
    );
  });

  it('agrees with merkle.ts on trees that need level-1 and level-2 tiles', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 65_000, max: 70_000 }).chain((n) => fc.tuple(fc.nat({ max: n - 1 }), fc.constant(n))), async ([index, size]) => {
        expect((await tiles.inclusionProof(index, size)).map(hex)).toEqual((await inclusionProof(index, size, source)).map(hex));
        const m = index + 1;
        expect((await tiles.consistencyProof(m, size)).map(hex)).toEqual((await consistencyProof(m, size, source)).map(hex));
      }),
      { numRuns: 3 },
    );
  }, 60_000);

  it('reads one batch of stored nodes and at most 32 leaves for a proof, from the first proof on', async () => {
    const fresh = memoryTreeReader(LEAVES);
    const cold = new TileHashes(fresh);
    for (const [index, size] of [[12_345, 70_000], [69_999, 70_000], [0, 65_537], [40_000, 69_999]] as const) {
      fresh.reads.leaves = 0;
      fresh.reads.nodeQueries = 0;
      await cold.inclusionProof(index, size);
      expect(fresh.reads.leaves).toBeLessThanOrEqual(32);
      expect(fresh.reads.nodeQueries).toBeLessThanOrEqual(1);
      fresh.reads.leaves = 0;
      await cold.consistencyProof(index + 1, size);
      expect(fresh.reads.leaves).toBeLessThanOrEqual(32);
    }
  });

  it('refuses to build a proof over a node the store lost (audit.log_inconsistent)', async () => {
    const damaged = memoryTreeReader(LEAVES.slice(0, 1000));
    damaged.nodes_.delete('8/1');
    await expect(new TileHashes(damaged).inclusionProof(0, 1000)).rejects.toMatchObject({ code: 'audit.log_inconsistent' });
    await expect(new TileHashes(damaged).tile(1, 0, 3)).rejects.toMatchObject({ code: 'audit.log_inconsistent' });
    expect((await new TileHashes(damaged).tile(1, 0, 1)).map(hex)).toEqual([hex(rootFromLeafHashes(LEAVES.slice(0, 256)))]);
  });

  it('cross-checks one root against an independent SHA-256', () => {
    const d = createHash('sha256').update(Uint8Array.of(1)).update(LEAVES[0] as Hash).update(LEAVES[1] as Hash).digest();
    expect(hex(rootFromLeafHashes(LEAVES.slice(0, 2)))).toBe(d.toString('hex'));
  });
});
