import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { type Hash, consistencyProof, inclusionProof, rootFromLeafHashes, verifyInclusion } from '../../src/audit/merkle.js';
import { TileHashes } from '../../src/audit/tiles.js';
import { storeTreeReader } from '../../src/audit/tree-reader.js';
import { ManualClock } from '../../src/core/clock.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { backfillTreeNodes } from '../../src/store/audit-tree-nodes.js';
import { type StoreDatabase, openDatabase } from '../../src/store/database.js';
import { memoryTreeReader } from '../audit/memory-tree.js';
import { testEvent } from '../support/audit-event.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * The stored interior nodes (migration 0008, src/store/audit-tree-nodes.ts) on every store:
 * integration writes exactly the nodes the RFC 6962 tree has, proofs from them equal merkle.ts's
 * proofs from every leaf, the backfill reproduces them, and a tree reset under its nodes fails
 * closed instead of mixing two histories.
 */

const hex = (h: Uint8Array): string => Buffer.from(h).toString('hex');
const SIZE = 1100;

describe.each(TEST_DATABASES)('audit tree nodes on $name', (target) => {
  let database: StoreDatabase;
  let store: SqlAuditStore;
  let leaves: Hash[];
  let cleanup: () => Promise<void>;

  const storedNodes = async (): Promise<string[]> =>
    (await database.db.selectFrom('audit_tree_nodes').selectAll().orderBy('height').orderBy('idx').execute()).map((r) => `${r.height}/${r.idx}/${r.hash}`);

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rampart-tree-nodes-'));
    const created = await target.create();
    database = await openDatabase({ databaseUrl: created.url, dataDir });
    cleanup = async () => {
      await database.close();
      await created.drop();
      rmSync(dataDir, { recursive: true, force: true });
    };
    store = new SqlAuditStore(database.db, database.dialect);
    const log = new AuditLog({ store, clock: new ManualClock(), integrateBatch: 37 });
    for (let i = 0; i < SIZE; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => log.append(testEvent(i + j))));
      await log.integrateAll();
    }
    leaves = (await store.leafHashes(0, SIZE)).map((h) => new Uint8Array(Buffer.from(h, 'hex')));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('stores exactly the perfect subtrees of height ≥ 4, as batches complete them', async () => {
    const expected = [...memoryTreeReader(leaves).nodes_.entries()]
      .map(([key, h]) => ({ height: Number(key.split('/')[0]), index: Number(key.split('/')[1]), h: hex(h) }))
      .sort((a, b) => a.height - b.height || a.index - b.index)
      .map(({ height, index, h }) => `${height}/${index}/${h}`);
    expect(expected.length).toBeGreaterThan(SIZE / 16);
    expect(await storedNodes()).toEqual(expected);
  });

  it('serves proofs and tiles from them equal to those computed from every leaf', async () => {
    const tiles = new TileHashes(storeTreeReader(store));
    const source = (s: number, e: number): Hash[] => leaves.slice(s, e);
    for (const [index, size] of [[0, 1], [5, 16], [17, 1024], [1023, 1025], [700, SIZE], [SIZE - 1, SIZE]] as const) {
      const proof = await tiles.inclusionProof(index, size);
      expect(proof.map(hex)).toEqual((await inclusionProof(index, size, source)).map(hex));
      verifyInclusion(index, size, leaves[index] as Hash, proof, rootFromLeafHashes(leaves.slice(0, size)));
      expect((await tiles.consistencyProof(index + 1, size)).map(hex)).toEqual((await consistencyProof(index + 1, size, source)).map(hex));
    }
    expect((await tiles.tile(1, 0, 4)).map(hex)).toEqual([0, 1, 2, 3].map((j) => hex(rootFromLeafHashes(leaves.slice(256 * j, 256 * j + 256)))));
    expect(hex(await tiles.leafHash(42))).toBe(hex(leaves[42] as Hash));
  });

  it('backfills the same nodes from the stored leaf hashes (migration 0008 on an older log)', async () => {
    const before = await storedNodes();
    await database.db.deleteFrom('audit_tree_nodes').execute();
    expect(await backfillTreeNodes(database.db, database.dialect, SIZE)).toBe(before.length);
    expect(await storedNodes()).toEqual(before);
  });

  it('refuses to backfill over a gap in the leaves', async () => {
    await expect(backfillTreeNodes(database.db, database.dialect, SIZE + 1)).rejects.toThrow(/leaf 1100 is missing/);
  });

  it('fails integration closed when the tree was reset under its stored nodes', async () => {
    await database.db.deleteFrom('audit_tree').execute();
    await database.db.updateTable('audit_events').set({ leaf_index: null, leaf_hash: null }).where('leaf_index', '>=', 0).execute();
    const log = new AuditLog({ store, clock: new ManualClock(), integrateBatch: 64 });
    await expect(log.integrateAll()).rejects.toThrow();
    expect(await store.treeState()).toBeUndefined();
  });
});
