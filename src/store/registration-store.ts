import type { Kysely, Selectable } from 'kysely';
import type { RegistrationEntry, RegistrationStore } from '../pki/registration-store.js';
import type { Database, PkiRegistrationsTable } from './schema.js';
import { isUniqueViolation } from './unique-violation.js';

function fromRow(r: Selectable<PkiRegistrationsTable>): RegistrationEntry {
  return {
    id: r.id,
    tenant: r.tenant,
    spiffeId: r.spiffe_id,
    parent: r.parent,
    selectors: JSON.parse(r.selectors) as string[],
    dnsNames: JSON.parse(r.dns_names) as string[],
    // PostgreSQL returns bigint as a string.
    ttlMs: r.ttl_ms === null ? null : Number(r.ttl_ms),
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

export class SqlRegistrationStore implements RegistrationStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(e: RegistrationEntry): Promise<boolean> {
    try {
      await this.insertRow(e);
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  private async insertRow(e: RegistrationEntry): Promise<void> {
    await this.db
      .insertInto('pki_registrations')
      .values({
        id: e.id,
        tenant: e.tenant,
        spiffe_id: e.spiffeId,
        parent: e.parent,
        selectors: JSON.stringify(e.selectors),
        dns_names: JSON.stringify(e.dnsNames),
        ttl_ms: e.ttlMs,
        created_at: e.createdAt,
        created_by: e.createdBy,
      })
      .execute();
  }

  async get(tenant: string, id: string): Promise<RegistrationEntry | undefined> {
    const row = await this.db.selectFrom('pki_registrations').selectAll().where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  async list(tenant: string, limit: number, cursor: string | undefined): Promise<RegistrationEntry[]> {
    let q = this.db.selectFrom('pki_registrations').selectAll().where('tenant', '=', tenant);
    if (cursor !== undefined) q = q.where('id', '>', cursor);
    return (await q.orderBy('id').limit(limit).execute()).map(fromRow);
  }

  async byParents(tenant: string, parents: readonly string[]): Promise<RegistrationEntry[]> {
    if (parents.length === 0) return [];
    const rows = await this.db.selectFrom('pki_registrations').selectAll().where('tenant', '=', tenant).where('parent', 'in', parents).orderBy('id').execute();
    return rows.map(fromRow);
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('pki_registrations').where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
