import type { Kysely } from 'kysely';
import type { LegalHold, LegalHoldStore } from '../audit/retention-store.js';
import type { Database } from './schema.js';

const HOLD_ROW = 1;

/** LegalHoldStore over the single row of `audit_legal_hold` (migration 0007). */
export class SqlLegalHoldStore implements LegalHoldStore {
  constructor(private readonly db: Kysely<Database>) {}

  async get(): Promise<LegalHold> {
    const row = await this.db.selectFrom('audit_legal_hold').selectAll().where('id', '=', HOLD_ROW).executeTakeFirst();
    return row ? { enabled: Number(row.enabled) === 1, reason: row.reason, since: row.since ?? undefined } : { enabled: false, reason: '', since: undefined };
  }

  async set(enabled: boolean, reason: string, at: string): Promise<LegalHold> {
    const current = await this.get();
    const since = enabled ? (current.enabled ? current.since ?? at : at) : null;
    await this.db
      .insertInto('audit_legal_hold')
      .values({ id: HOLD_ROW, enabled: enabled ? 1 : 0, reason, since, updated_at: at })
      .onConflict((oc) => oc.column('id').doUpdateSet({ enabled: enabled ? 1 : 0, reason, since, updated_at: at }))
      .execute();
    return { enabled, reason, since: since ?? undefined };
  }
}
