import { type Kysely, sql } from 'kysely';
import type { IntegratedEvent, SinkStore } from '../audit/sink-store.js';
import type { Clock } from '../core/clock.js';
import type { Dialect } from './database.js';
import type { Database } from './schema.js';

const TREE_ROW = 1;

/** SinkStore over `audit_events`, `audit_tree` and `audit_sink_cursors` (migration 0004). */
export class SqlSinkStore implements SinkStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly clock: Clock,
  ) {}

  async readIntegrated(fromLeafIndex: number, limit: number): Promise<IntegratedEvent[]> {
    const rows = await this.db
      .selectFrom('audit_events')
      .select(['leaf_index', 'payload', 'pruned_at'])
      .where('leaf_index', '>=', fromLeafIndex)
      .orderBy('leaf_index')
      .limit(limit)
      .execute();
    // pg returns bigint columns as strings.
    return rows.map((r) => ({ leafIndex: Number(r.leaf_index), payload: r.payload, ...(r.pruned_at === null ? {} : { pruned: true }) }));
  }

  async integratedSize(): Promise<number> {
    const row = await this.db.selectFrom('audit_tree').select('size').where('id', '=', TREE_ROW).executeTakeFirst();
    return row ? Number(row.size) : 0;
  }

  async cursor(sinkName: string): Promise<number> {
    const row = await this.db.selectFrom('audit_sink_cursors').select('next_leaf_index').where('name', '=', sinkName).executeTakeFirst();
    return row ? Number(row.next_leaf_index) : 0;
  }

  async advance(sinkName: string, nextLeafIndex: number): Promise<void> {
    if (!Number.isSafeInteger(nextLeafIndex) || nextLeafIndex < 0) throw new RangeError(`invalid leaf index ${nextLeafIndex}`);
    await this.db
      .insertInto('audit_sink_cursors')
      .values({ name: sinkName, next_leaf_index: nextLeafIndex, updated_at: this.clock.now().toISOString() })
      // One statement, so two writers cannot interleave a read and a write: the row only moves forward.
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet((eb) => ({ next_leaf_index: eb.ref('excluded.next_leaf_index'), updated_at: eb.ref('excluded.updated_at') }))
          .where('audit_sink_cursors.next_leaf_index', '<', sql.ref<number>('excluded.next_leaf_index')),
      )
      .execute();
  }

  /**
   * PostgreSQL: a transaction-scoped advisory lock, tried without waiting, held for as long as
   * `work` runs (one pooled connection per delivering sink). SQLite has one process per file, so
   * there is nobody to exclude.
   */
  async withSinkLock<T>(sinkName: string, work: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }> {
    if (this.dialect !== 'postgres') return { acquired: true, value: await work() };
    return this.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext(${`rampart.audit_sink:${sinkName}`})) as locked`.execute(trx);
      if (!rows[0]?.locked) return { acquired: false as const };
      return { acquired: true as const, value: await work() };
    });
  }
}
