import { type QueryExecutorProvider, sql } from 'kysely';
import { CompactRange, type Hash, toHex } from '../audit/merkle.js';
import { STORED_NODE_MIN_HEIGHT } from '../audit/tiles.js';

/** Rows per multi-row INSERT: 3 parameters each, far below SQLite's and PostgreSQL's limits. */
export const NODE_INSERT_CHUNK = 2000;
const READ_CHUNK = 16_384;

/**
 * Inserts interior-node rows. A node is written once, when its last leaf is integrated; finding
 * it already stored means the tree was reset underneath its nodes, and the insert fails rather
 * than keep or overwrite a hash that may contradict a signed checkpoint.
 */
export async function insertTreeNodes(db: QueryExecutorProvider, rows: readonly { height: number; index: number; hash: string }[]): Promise<void> {
  for (let at = 0; at < rows.length; at += NODE_INSERT_CHUNK) {
    const values = rows.slice(at, at + NODE_INSERT_CHUNK).map((r) => sql`(${r.height}, ${r.index}, ${r.hash})`);
    await sql`insert into audit_tree_nodes (height, idx, hash) values ${sql.join(values)}`.execute(db);
  }
}

/**
 * Computes and stores the interior nodes of the already integrated leaves [0, size) from their
 * stored leaf hashes, in leaf order. Used once by migration 0008 for logs integrated before nodes
 * were stored, and by the benchmark to build a large synthetic tree through the same code.
 * Returns how many nodes were written.
 */
export async function backfillTreeNodes(db: QueryExecutorProvider, size: number): Promise<number> {
  const range = CompactRange.empty();
  let pending: { height: number; index: number; hash: string }[] = [];
  let written = 0;
  const keep = (height: number, index: number, hash: Hash): void => {
    if (height >= STORED_NODE_MIN_HEIGHT) pending.push({ height, index, hash: toHex(hash) });
  };
  for (let start = 0; start < size; start += READ_CHUNK) {
    const end = Math.min(size, start + READ_CHUNK);
    const { rows } = await sql<{ leaf_index: number | string; leaf_hash: string | null }>`select leaf_index, leaf_hash from audit_events
      where leaf_index >= ${start} and leaf_index < ${end} order by leaf_index`.execute(db);
    for (const r of rows) {
      if (Number(r.leaf_index) !== range.size || r.leaf_hash === null) {
        throw new Error(`audit leaf ${range.size} is missing; the tree nodes cannot be rebuilt (run rampart audit verify)`);
      }
      range.append(new Uint8Array(Buffer.from(r.leaf_hash, 'hex')), keep);
    }
    if (range.size !== end) throw new Error(`audit leaf ${range.size} is missing; the tree nodes cannot be rebuilt (run rampart audit verify)`);
    if (pending.length >= NODE_INSERT_CHUNK || end === size) {
      await insertTreeNodes(db, pending);
      written += pending.length;
      pending = [];
    }
  }
  return written;
}
