import { type Kysely, sql } from 'kysely';
import type { PruneBatch, PruneOutcome, PruneStore } from '../audit/retention-store.js';
import type { Dialect } from './database.js';
import type { Database } from './schema.js';

const HOLD_ROW = 1;

/** PruneStore over `audit_events`, `audit_legal_hold`, `audit_sink_cursors` and `audit_checkpoints`. */
export class SqlPruneStore implements PruneStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async pruneBatch(batch: PruneBatch): Promise<PruneOutcome> {
    return this.db.transaction().execute(async (trx): Promise<PruneOutcome> => {
      if (this.dialect === 'postgres') {
        // One pruner at a time across replicas; the others skip this round rather than queue.
        const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext('rampart.audit_pruner')) as locked`.execute(trx);
        if (!rows[0]?.locked) return { kind: 'busy' };
      }
      // FOR SHARE: a legal hold placed concurrently waits for this batch, and the next batch sees it.
      let holdQuery = trx.selectFrom('audit_legal_hold').select('enabled').where('id', '=', HOLD_ROW);
      if (this.dialect === 'postgres') holdQuery = holdQuery.forShare();
      const hold = await holdQuery.executeTakeFirst();
      if (hold && Number(hold.enabled) === 1) return { kind: 'held' };

      // Only what a signed checkpoint covers: the checkpointer re-hashes payloads above it.
      const cp = await trx.selectFrom('audit_checkpoints').select((eb) => eb.fn.max('size').as('size')).executeTakeFirst();
      let bound = cp?.size === null || cp?.size === undefined ? 0 : Number(cp.size);
      if (batch.sinkNames.length > 0) {
        const cursors = await trx.selectFrom('audit_sink_cursors').select(['name', 'next_leaf_index']).where('name', 'in', [...batch.sinkNames]).execute();
        const byName = new Map(cursors.map((c) => [c.name, Number(c.next_leaf_index)]));
        for (const name of batch.sinkNames) bound = Math.min(bound, byName.get(name) ?? 0);
      }
      if (bound <= 0) return { kind: 'pruned', pruned: 0 };

      const due = await trx
        .selectFrom('audit_events')
        .select('id')
        .where('leaf_index', 'is not', null)
        .where('leaf_index', '<', bound)
        .where('pruned_at', 'is', null)
        .where('recorded_at', '<', batch.recordedBefore)
        .orderBy('leaf_index')
        .limit(batch.limit)
        .execute();
      if (due.length === 0) return { kind: 'pruned', pruned: 0 };
      await trx
        .updateTable('audit_events')
        .set({ payload: '', pruned_at: batch.at, event_time: null, principal_id: null, action: null, resource: null, outcome: null })
        .where(
          'id',
          'in',
          due.map((r) => r.id),
        )
        .execute();
      return { kind: 'pruned', pruned: due.length };
    });
  }
}
