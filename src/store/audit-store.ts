import { type Kysely, sql } from 'kysely';
import type { AuditStore, EventPage, Integration, LeafEntry, PendingEntry, TreeNodeRow, TreeState } from '../audit/store.js';
import { requireEntrySize } from '../audit/event-bounds.js';
import { type EventFilter, indexFieldsOf } from '../audit/query.js';
import type { Dialect } from './database.js';
import { insertTreeNodes } from './audit-tree-nodes.js';
import type { Database } from './schema.js';

const TREE_ROW = 1;

export class SqlAuditStore implements AuditStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(rows: readonly { tenant: string; recordedAt: string; payload: string }[]): Promise<void> {
    if (rows.length === 0) return;
    for (const r of rows) requireEntrySize(r.payload);
    const values = rows.map((r) => {
      const f = indexFieldsOf(r.payload);
      return {
        tenant: r.tenant,
        recorded_at: r.recordedAt,
        payload: r.payload,
        leaf_index: null,
        leaf_hash: null,
        event_time: f.eventTime,
        principal_id: f.principalId,
        action: f.action,
        resource: f.resource,
        outcome: f.outcome,
      };
    });
    if (this.dialect === 'postgres') {
      // One array parameter per column instead of eleven parameters per row: PostgreSQL then
      // parses and binds a statement of constant size, whatever the group commit's batch size;
      // ids follow the array order, which is the append order.
      const column = (pick: (v: (typeof values)[number]) => string | null) => values.map(pick);
      await sql`insert into audit_events (tenant, recorded_at, payload, event_time, principal_id, action, resource, outcome)
        select t, r, p, e, pr, a, res, o from unnest(${column((v) => v.tenant)}::text[], ${column((v) => v.recorded_at)}::text[], ${column((v) => v.payload)}::text[],
          ${column((v) => v.event_time)}::text[], ${column((v) => v.principal_id)}::text[], ${column((v) => v.action)}::text[],
          ${column((v) => v.resource)}::text[], ${column((v) => v.outcome)}::text[]) with ordinality as u(t, r, p, e, pr, a, res, o, n)
        order by n`.execute(this.db);
      return;
    }
    await this.db.insertInto('audit_events').values(values).execute();
  }

  async integratePending(
    limit: number,
    integrate: (state: TreeState | undefined, pending: readonly PendingEntry[]) => Integration,
  ): Promise<Integration | undefined> {
    return this.db.transaction().execute(async (trx) => {
      // The sequencer lock: on PostgreSQL a row lock on the tree state serializes replicas; SQLite
      // has one writer per file, and the transaction already holds it once it writes.
      await trx.insertInto('audit_tree').values({ id: TREE_ROW, size: 0, frontier: '{"size":0,"hashes":[]}', root_hash: '', updated_at: '' }).onConflict((oc) => oc.column('id').doNothing()).execute();
      let stateQuery = trx.selectFrom('audit_tree').selectAll().where('id', '=', TREE_ROW);
      if (this.dialect === 'postgres') stateQuery = stateQuery.forUpdate();
      const stateRow = await stateQuery.executeTakeFirstOrThrow();
      const pending = await trx
        .selectFrom('audit_events')
        .select(['id', 'payload'])
        .where('leaf_index', 'is', null)
        .orderBy('id')
        .limit(limit)
        .execute();
      if (pending.length === 0) return undefined;
      const state: TreeState | undefined =
        stateRow.size === 0 ? undefined : { size: stateRow.size, frontier: stateRow.frontier, rootHash: stateRow.root_hash };
      const result = integrate(state, pending);
      await this.#assignLeaves(trx, result.entries);
      await insertTreeNodes(trx, result.nodes);
      await trx
        .updateTable('audit_tree')
        .set({ size: result.tree.size, frontier: result.tree.frontier, root_hash: result.tree.rootHash, updated_at: result.at })
        .where('id', '=', TREE_ROW)
        .execute();
      await trx.insertInto('audit_tree_heads').values({ size: result.tree.size, root_hash: result.tree.rootHash, created_at: result.at }).execute();
      return result;
    });
  }

  /**
   * One statement per batch on PostgreSQL (a round trip per row would dominate integration);
   * SQLite runs in-process, where a cached prepared UPDATE per row is cheaper than building a
   * large statement.
   */
  async #assignLeaves(trx: Kysely<Database>, entries: Integration['entries']): Promise<void> {
    if (this.dialect === 'postgres') {
      const rows = entries.map((e) => sql`(${e.id}::bigint, ${e.leafIndex}::bigint, ${e.leafHash}::text)`);
      await sql`update audit_events as a set leaf_index = v.leaf_index, leaf_hash = v.leaf_hash
        from (values ${sql.join(rows)}) as v(id, leaf_index, leaf_hash) where a.id = v.id`.execute(trx);
      return;
    }
    for (const e of entries) {
      await trx.updateTable('audit_events').set({ leaf_index: e.leafIndex, leaf_hash: e.leafHash }).where('id', '=', e.id).execute();
    }
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

  async count(): Promise<number> {
    const row = await this.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
