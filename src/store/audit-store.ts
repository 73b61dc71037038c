import { type Kysely, sql } from 'kysely';
import type { AuditRowInput, AuditStore, EventPage, Integration, LeafEntry, PendingEntry, StoredBundle, TreeNodeRow, TreeState } from '../audit/store.js';
import { requireEntrySize } from '../audit/event-bounds.js';
import { type EventFilter, indexFieldsOf } from '../audit/query.js';
import type { Dialect } from './database.js';
import { insertTreeNodes } from './audit-tree-nodes.js';
import type { Database } from './schema.js';

const TREE_ROW = 1;

/** One aggregate row of {@link SqlAuditStore.entryBundle}; PostgreSQL returns counts as strings. */
interface BundleRow {
  body: Uint8Array | null;
  n: number | string;
  lo: number | string | null;
  hi: number | string | null;
  p: number | string;
  fp: number | string | null;
  longest: number | string | null;
}

/**
 * SQLite's batch statements (see insert and #assignLeaves). A batch is one JSON array bound as
 * one parameter and unpacked by `json_each` in its array order, so the statement text is the
 * same for every batch size (one prepared statement) and a batch costs one call through Kysely
 * rather than one per row, whose promise chain costs more than SQLite's work on the row. Values
 * are stored byte for byte as bound strings would be: JSON escapes every string, and SQLite
 * decodes the escapes back to the same UTF-8 (a lone surrogate too), or JSON null to NULL.
 */
const insertEvents = (json: string) =>
  sql`insert into audit_events (tenant, recorded_at, payload, event_time, principal_id, action, resource, outcome)
    select value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
    from json_each(${json}) order by key`;
const assignLeaves = (json: string) =>
  sql`update audit_events set leaf_index = j.value ->> 1, leaf_hash = j.value ->> 2
    from json_each(${json}) as j where audit_events.id = j.value ->> 0`;

export class SqlAuditStore implements AuditStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(rows: readonly AuditRowInput[]): Promise<void> {
    if (rows.length === 0) return;
    for (const r of rows) requireEntrySize(r.payload);
    // One tuple per row, in the column order of both statements below.
    const batch = rows.map((r) => {
      const f = r.index ?? indexFieldsOf(r.payload);
      return [r.tenant, r.recordedAt, r.payload, f.eventTime, f.principalId, f.action, f.resource, f.outcome];
    });
    if (this.dialect === 'postgres') {
      // One array parameter per column instead of eight parameters per row: PostgreSQL then
      // parses and binds a statement of constant size, whatever the group commit's batch size;
      // ids follow the array order, which is the append order.
      const column = (i: number) => batch.map((row) => row[i] ?? null);
      await sql`insert into audit_events (tenant, recorded_at, payload, event_time, principal_id, action, resource, outcome)
        select t, r, p, e, pr, a, res, o from unnest(${column(0)}::text[], ${column(1)}::text[], ${column(2)}::text[],
          ${column(3)}::text[], ${column(4)}::text[], ${column(5)}::text[],
          ${column(6)}::text[], ${column(7)}::text[]) with ordinality as u(t, r, p, e, pr, a, res, o, n)
        order by n`.execute(this.db);
      return;
    }
    await insertEvents(JSON.stringify(batch)).execute(this.db);
  }

  async integratePending(
    limit: number,
    integrate: (state: TreeState | undefined, pending: readonly PendingEntry[]) => Integration,
  ): Promise<Integration | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const state = await this.#lockTree(trx);
      const pending = await this.#pending(trx, limit);
      if (pending.length === 0) return undefined;
      const result = integrate(state, pending);
      await this.#store(trx, result);
      return result;
    });
  }

  /** Up to `limit` rows not yet integrated, in insertion order. */
  pendingEntries(limit: number): Promise<PendingEntry[]> {
    return this.#pending(this.db, limit);
  }

  /**
   * Stores an integration computed outside any transaction from the tree `basis` and rows of
   * {@link pendingEntries}; returns false, storing nothing, when the tree is no longer `basis`
   * (another integrator went first). The tree state changes with every integration, in the same
   * transaction as the leaves, so an unchanged state means the rows read are still the next
   * ones pending: this lets the audit thread hash outside the write lock
   * (./sqlite-audit-thread.ts).
   */
  async applyIntegration(basis: TreeState | undefined, result: Integration): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const state = await this.#lockTree(trx);
      if ((state?.size ?? 0) !== (basis?.size ?? 0) || state?.rootHash !== basis?.rootHash) return false;
      await this.#store(trx, result);
      return true;
    });
  }

  /**
   * The tree state, read under the sequencer lock: on PostgreSQL a row lock on it serializes
   * replicas; SQLite has one writer per file, and the transaction holds it from this write on.
   */
  async #lockTree(trx: Kysely<Database>): Promise<TreeState | undefined> {
    await trx.insertInto('audit_tree').values({ id: TREE_ROW, size: 0, frontier: '{"size":0,"hashes":[]}', root_hash: '', updated_at: '' }).onConflict((oc) => oc.column('id').doNothing()).execute();
    let stateQuery = trx.selectFrom('audit_tree').selectAll().where('id', '=', TREE_ROW);
    if (this.dialect === 'postgres') stateQuery = stateQuery.forUpdate();
    const row = await stateQuery.executeTakeFirstOrThrow();
    return row.size === 0 ? undefined : { size: row.size, frontier: row.frontier, rootHash: row.root_hash };
  }

  #pending(db: Kysely<Database>, limit: number): Promise<PendingEntry[]> {
    return db.selectFrom('audit_events').select(['id', 'payload']).where('leaf_index', 'is', null).orderBy('id').limit(limit).execute();
  }

  async #store(trx: Kysely<Database>, result: Integration): Promise<void> {
    await this.#assignLeaves(trx, result.entries);
    await insertTreeNodes(trx, this.dialect, result.nodes);
    await trx
      .updateTable('audit_tree')
      .set({ size: result.tree.size, frontier: result.tree.frontier, root_hash: result.tree.rootHash, updated_at: result.at })
      .where('id', '=', TREE_ROW)
      .execute();
    await trx.insertInto('audit_tree_heads').values({ size: result.tree.size, root_hash: result.tree.rootHash, created_at: result.at }).execute();
  }

  /**
   * One statement per batch: an UPDATE joined to the batch's arrays on PostgreSQL (a round trip
   * per row would dominate integration), and to the batch's JSON array on SQLite.
   */
  async #assignLeaves(trx: Kysely<Database>, entries: Integration['entries']): Promise<void> {
    if (this.dialect === 'postgres') {
      await sql`update audit_events as a set leaf_index = v.leaf_index, leaf_hash = v.leaf_hash
        from unnest(${entries.map((e) => e.id)}::bigint[], ${entries.map((e) => e.leafIndex)}::bigint[], ${entries.map((e) => e.leafHash)}::text[]) as v(id, leaf_index, leaf_hash)
        where a.id = v.id`.execute(trx);
      return;
    }
    await assignLeaves(JSON.stringify(entries.map((e) => [e.id, e.leafIndex, e.leafHash]))).execute(trx);
  }

  async treeState(): Promise<TreeState | undefined> {
    const row = await this.db.selectFrom('audit_tree').selectAll().where('id', '=', TREE_ROW).executeTakeFirst();
    return row && row.size > 0 ? { size: row.size, frontier: row.frontier, rootHash: row.root_hash } : undefined;
  }

  async listEvents(tenant: string, afterId: number, limit: number, filter: EventFilter = {}): Promise<EventPage> {
    let q = this.db
      .selectFrom('audit_events')
      .select(['id', 'tenant', 'payload', 'leaf_index', 'pruned_at'])
      .where('tenant', '=', tenant)
      .where('id', '>', afterId);
    if (filter.since !== undefined) q = q.where('event_time', '>=', filter.since);
    if (filter.until !== undefined) q = q.where('event_time', '<', filter.until);
    if (filter.principal !== undefined) q = q.where('principal_id', '=', filter.principal);
    if (filter.action !== undefined) q = q.where('action', '=', filter.action);
    if (filter.resource !== undefined) q = q.where('resource', '=', filter.resource);
    if (filter.outcome !== undefined) q = q.where('outcome', '=', filter.outcome);
    const rows = await q.orderBy('id').limit(limit + 1).execute();
    const items = rows.slice(0, limit).map((r) => ({ id: r.id, tenant: r.tenant, payload: r.payload, leafIndex: r.leaf_index, prunedAt: r.pruned_at }));
    return { items, nextCursor: rows.length > limit ? items.at(-1)?.id : undefined };
  }

  async leafHashes(start: number, end: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('audit_events')
      .select(['leaf_index', 'leaf_hash'])
      .where('leaf_index', '>=', start)
      .where('leaf_index', '<', end)
      .orderBy('leaf_index')
      .execute();
    return rows.map((r) => r.leaf_hash ?? '');
  }

  async treeNodes(refs: readonly { height: number; index: number }[]): Promise<TreeNodeRow[]> {
    if (refs.length === 0) return [];
    const rows = await this.db
      .selectFrom('audit_tree_nodes')
      .select(['height', 'idx', 'hash'])
      .where((eb) => eb.or(refs.map((r) => eb.and([eb('height', '=', r.height), eb('idx', '=', r.index)]))))
      .execute();
    return rows.map((r) => ({ height: r.height, index: Number(r.idx), hash: r.hash }));
  }

  async treeNodeRange(height: number, start: number, end: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('audit_tree_nodes')
      .select('hash')
      .where('height', '=', height)
      .where('idx', '>=', start)
      .where('idx', '<', end)
      .orderBy('idx')
      .execute();
    return rows.map((r) => r.hash);
  }

  async leafEntries(start: number, end: number): Promise<LeafEntry[]> {
    const rows = await this.db
      .selectFrom('audit_events')
      .select(['leaf_index', 'payload', 'leaf_hash', 'pruned_at'])
      .where('leaf_index', '>=', start)
      .where('leaf_index', '<', end)
      .orderBy('leaf_index')
      .execute();
    return rows.map((r) => ({ leafIndex: Number(r.leaf_index), payload: r.payload, leafHash: r.leaf_hash ?? '', prunedAt: r.pruned_at }));
  }

  // Tile reads run once per tile request: plain SQL without the query builder, and a tile comes
  // back as one value rather than 256 row objects (docs/audit.md, Performance). On SQLite the
  // concatenation runs over a subquery in index order instead of `group_concat(… order by …)`,
  // which sorts its input again in a temporary B-tree (about half the cost of a bundle read).
  // The order holds because SQLite never flattens an ordered subquery into an aggregate query
  // (https://www.sqlite.org/optoverview.html#flattening, rule 16) and reads a co-routine's rows
  // in the order it yields them.
  async tileHashesHex(height: number, start: number, end: number): Promise<string> {
    const leaves = height === 0;
    const rows =
      this.dialect === 'postgres'
        ? leaves
          ? sql<{ h: string | null }>`select string_agg(leaf_hash, '' order by leaf_index) as h from audit_events where leaf_index >= ${start} and leaf_index < ${end}`
          : sql<{ h: string | null }>`select string_agg(hash, '' order by idx) as h from audit_tree_nodes where height = ${height} and idx >= ${start} and idx < ${end}`
        : leaves
          ? sql<{ h: string | null }>`select group_concat(leaf_hash, '') as h from (select leaf_hash from audit_events where leaf_index >= ${start} and leaf_index < ${end} order by leaf_index)`
          : sql<{ h: string | null }>`select group_concat(hash, '') as h from (select hash from audit_tree_nodes where height = ${height} and idx >= ${start} and idx < ${end} order by idx)`;
    return (await rows.execute(this.db)).rows[0]?.h ?? '';
  }

  async entryBundle(start: number, end: number): Promise<StoredBundle> {
    // The bundle is concatenated by the database: one value per bundle instead of 256 row objects.
    // SQLite's `||` on blobs yields text, which keeps every byte (NULs included) until the cast.
    const query =
      this.dialect === 'postgres'
        ? sql<BundleRow>`select string_agg(substring(int4send(octet_length(convert_to(payload, 'UTF8'))) from 3 for 2) || convert_to(payload, 'UTF8'), ''::bytea order by leaf_index) as body,
            count(*) as n, min(leaf_index) as lo, max(leaf_index) as hi, count(pruned_at) as p,
            min(case when pruned_at is not null then leaf_index end) as fp, max(octet_length(convert_to(payload, 'UTF8'))) as longest
          from audit_events where leaf_index >= ${start} and leaf_index < ${end}`
        : sql<BundleRow>`select cast(group_concat(unhex(printf('%04x', length(cast(payload as blob)))) || cast(payload as blob), '') as blob) as body,
            count(*) as n, min(leaf_index) as lo, max(leaf_index) as hi, count(pruned_at) as p,
            min(case when pruned_at is not null then leaf_index end) as fp, max(length(cast(payload as blob))) as longest
          from (select payload, leaf_index, pruned_at from audit_events where leaf_index >= ${start} and leaf_index < ${end} order by leaf_index)`;
    const r = (await query.execute(this.db)).rows[0];
    const num = (v: number | string | null | undefined): number | null => (v === null || v === undefined ? null : Number(v));
    return {
      body: r?.body ?? new Uint8Array(0),
      count: num(r?.n) ?? 0,
      first: num(r?.lo),
      last: num(r?.hi),
      pruned: num(r?.p) ?? 0,
      firstPruned: num(r?.fp),
      longest: num(r?.longest) ?? 0,
    };
  }

  async prunedLeaves(start: number, end: number): Promise<number[]> {
    const { rows } = await sql<{ leaf_index: number }>`select leaf_index from audit_events
      where leaf_index >= ${start} and leaf_index < ${end} and pruned_at is not null order by leaf_index`.execute(this.db);
    return rows.map((r) => Number(r.leaf_index));
  }

  async count(): Promise<number> {
    const row = await this.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
