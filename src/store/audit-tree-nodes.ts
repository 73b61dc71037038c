import { type QueryExecutorProvider, sql } from 'kysely';
import { CompactRange, type Hash, toHex } from '../audit/merkle.js';
import { STORED_NODE_MIN_HEIGHT } from '../audit/tiles.js';
import type { Dialect } from './database.js';

/** Rows per INSERT, to bound the size of the one value each is bound as. */
export const NODE_INSERT_CHUNK = 2000;
const READ_CHUNK = 16_384;

/**
 * Inserts interior-node rows. A node is written once, when its last leaf is integrated; finding
 * it already stored means the tree was reset underneath its nodes, and the insert fails rather
 * than keep or overwrite a hash that may contradict a signed checkpoint.
 *
 * The rows are bound as arrays (PostgreSQL) or one JSON array (SQLite), so the statement text is
 * the same for any number of rows: one prepared statement. A multi-row `VALUES` list had a text
 * per row count, which Kysely built node by node and SQLite prepared anew for each count that
 * had left the statement cache: 1–3 ms of the event loop in some integrated batches.
 */
export async function insertTreeNodes(db: QueryExecutorProvider, dialect: Dialect, rows: readonly { height: number; index: number; hash: string }[]): Promise<void> {
  for (let at = 0; at < rows.length; at += NODE_INSERT_CHUNK) {
    const chunk = rows.slice(at, at + NODE_INSERT_CHUNK);
    if (dialect === 'postgres') {
      await sql`insert into audit_tree_nodes (height, idx, hash)
        select * from unnest(${chunk.map((r) => r.height)}::integer[], ${chunk.map((r) => r.index)}::bigint[], ${chunk.map((r) => r.hash)}::text[])`.execute(db);
    } else {
      await sql`insert into audit_tree_nodes (height, idx, hash)
        select value ->> 0, value ->> 1, value ->> 2 from json_each(${JSON.stringify(chunk.map((r) => [r.height, r.index, r.hash]))})`.execute(db);
    }
  }
}

/**
 * Computes and stores the interior nodes of the already integrated leaves [0, size) from their
 * stored leaf hashes, in leaf order. Used once by migration 0008 for logs integrated before nodes
 * were stored, and by the benchmark to build a large synthetic tree through the same code.
 * Returns how many nodes were written.
 */
export async function backfillTreeNodes(db: QueryExecutorProvider, dialect: Dialect, size: number): Promise<number> {
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
      await insertTreeNodes(db, dialect, pending);
      written += pending.length;
      pending = [];
    }
  }
  return written;
}
