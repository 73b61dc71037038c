import type { Kysely } from 'kysely';
import type { CrlBase, CrlBaseStore } from '../pki/crl.js';
import { type LoggedRevocation, PKI_EVENT_RETENTION_MS, type PkiEventRecord, type PkiEventStore, type RevokedEvent } from '../pki/events.js';
import type { PkiChange } from '../pki/replica-sync.js';
import type { RevocationReason, RevokedCertificate } from '../pki/store.js';
import type { Database } from './schema.js';

/**
 * The channel migration 0025's triggers NOTIFY on PostgreSQL when pki_events (payload `events`)
 * or pki_bundle_state (payload `bundle`) change; the notification arrives when the writing
 * transaction commits, whichever code path wrote.
 */
export const PKI_NOTIFY_CHANNEL = 'rampart_pki';

/** What a notification on {@link PKI_NOTIFY_CHANNEL} says moved; anything unexpected re-reads everything. */
export const pkiChangeOf = (payload: string): PkiChange => (payload === 'events' || payload === 'bundle' ? payload : 'resync');

const HEAD_ROW = 'head';
/** Rows per multi-row insert: 3 parameters each, well below SQLite's bound-parameter limit. */
const ROWS_PER_INSERT = 300;

/**
 * The PKI change log. `append` takes its sequence by incrementing the head row, whose row lock
 * (PostgreSQL) or write lock (SQLite) is held until the transaction ends: sequences are handed out
 * in commit order, so a reader that saw N never later finds an entry below N appear.
 */
export class SqlPkiEventStore implements PkiEventStore {
  constructor(private readonly db: Kysely<Database>) {}

  async append(tenant: string, event: RevokedEvent, revoked: readonly LoggedRevocation[], at: string): Promise<number> {
    const head = await this.db
      .insertInto('pki_event_head')
      .values({ id: HEAD_ROW, sequence: 1, updated_at: at })
      .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ sequence: eb('pki_event_head.sequence', '+', 1), updated_at: at })))
      .returning('sequence')
      .executeTakeFirstOrThrow();
    const sequence = Number(head.sequence);
    await this.db.insertInto('pki_events').values({ sequence, tenant, type: event.type, payload: JSON.stringify(event), created_at: at }).execute();
    for (let i = 0; i < revoked.length; i += ROWS_PER_INSERT) {
      const rows = revoked.slice(i, i + ROWS_PER_INSERT).map((r) => ({ issuer: r.issuer, sequence, serial_number: r.serialNumber }));
      await this.db.insertInto('pki_event_serials').values(rows).execute();
    }
    await this.#prune(new Date(Date.parse(at) - PKI_EVENT_RETENTION_MS).toISOString());
    return sequence;
  }

  async head(): Promise<number> {
    return headOf(this.db);
  }

  async after(sequence: number, limit: number): Promise<PkiEventRecord[]> {
    const rows = await this.db.selectFrom('pki_events').selectAll().where('sequence', '>', sequence).orderBy('sequence').limit(limit).execute();
    return rows.map((r) => ({ sequence: Number(r.sequence), tenant: r.tenant, event: JSON.parse(r.payload) as RevokedEvent }));
  }

  async #prune(before: string): Promise<void> {
    const last = await this.db.selectFrom('pki_events').select((eb) => eb.fn.max('sequence').as('last')).where('created_at', '<', before).executeTakeFirst();
    if (last?.last === null || last?.last === undefined) return;
    const upTo = Number(last.last);
    await this.db.deleteFrom('pki_events').where('sequence', '<=', upTo).execute();
    await this.db.deleteFrom('pki_event_serials').where('sequence', '<=', upTo).execute();
  }
}

async function headOf(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('pki_event_head').select('sequence').where('id', '=', HEAD_ROW).executeTakeFirst();
  return row === undefined ? 0 : Number(row.sequence);
}

/** The complete CRLs a delta CRL may name, and what the change log revoked after each. */
export class SqlCrlBaseStore implements CrlBaseStore {
  constructor(private readonly db: Kysely<Database>) {}

  changeSequence(): Promise<number> {
    return headOf(this.db);
  }

  async recordBase(issuer: string, base: CrlBase, now: string): Promise<void> {
    await this.db
      .insertInto('pki_crl_bases')
      .values({ issuer, crl_number: base.number, event_sequence: base.eventSequence, next_update: base.nextUpdate })
      .onConflict((oc) => oc.columns(['issuer', 'crl_number']).doNothing())
      .execute();
    await this.db.deleteFrom('pki_crl_bases').where('issuer', '=', issuer).where('next_update', '<', now).execute();
  }

  async oldestLiveBase(issuer: string, now: string): Promise<CrlBase | undefined> {
    const row = await this.db
      .selectFrom('pki_crl_bases')
      .selectAll()
      .where('issuer', '=', issuer)
      .where('next_update', '>', now)
      .orderBy('crl_number')
      .limit(1)
      .executeTakeFirst();
    return row && { number: Number(row.crl_number), eventSequence: Number(row.event_sequence), nextUpdate: row.next_update };
  }

  async revokedSince(issuer: string, eventSequence: number, now: string): Promise<RevokedCertificate[]> {
    // A certificate is revoked once, so it is in the log once: no duplicates to remove.
    const rows = await this.db
      .selectFrom('pki_event_serials as e')
      .innerJoin('pki_certificates as c', 'c.serial_number', 'e.serial_number')
      .select(['c.serial_number', 'c.revoked_at', 'c.revocation_reason', 'c.not_after'])
      .where('e.issuer', '=', issuer)
      .where('e.sequence', '>', eventSequence)
      .where('c.revoked_at', 'is not', null)
      .where('c.not_after', '>', now)
      .orderBy('c.serial_number')
      .execute();
    return rows.map((r) => ({ serialNumber: r.serial_number, revokedAt: r.revoked_at ?? '', reason: (r.revocation_reason ?? 'unspecified') as RevocationReason, notAfter: r.not_after }));
  }
}
