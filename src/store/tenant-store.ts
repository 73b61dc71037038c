import type { Kysely } from 'kysely';
import type { TenantPage, TenantRecord, TenantStore } from '../identity/store.js';
import { isUniqueViolation } from './unique-violation.js';
import type { Database, TenantsTable } from './schema.js';

const toRecord = (r: TenantsTable): TenantRecord => ({ name: r.name, trustDomain: r.trust_domain, createdAt: r.created_at });

export class SqlTenantStore implements TenantStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(t: TenantRecord): Promise<boolean> {
    try {
      await this.db.insertInto('tenants').values({ name: t.name, trust_domain: t.trustDomain, created_at: t.createdAt }).execute();
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async get(name: string): Promise<TenantRecord | undefined> {
    const row = await this.db.selectFrom('tenants').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toRecord(row);
  }

  async getByTrustDomain(trustDomain: string): Promise<TenantRecord | undefined> {
    const row = await this.db.selectFrom('tenants').selectAll().where('trust_domain', '=', trustDomain).executeTakeFirst();
    return row && toRecord(row);
  }

  async list(after: string | undefined, limit: number): Promise<TenantPage> {
    let q = this.db.selectFrom('tenants').selectAll().orderBy('name').limit(limit + 1);
    if (after !== undefined) q = q.where('name', '>', after);
    const rows = await q.execute();
    const items = rows.slice(0, limit).map(toRecord);
    return { items, nextCursor: rows.length > limit ? items.at(-1)?.name : undefined };
  }
}
