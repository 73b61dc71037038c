import { type Kysely, sql } from 'kysely';
import type { AclPolicyRecord, AclPolicyStore } from '../secrets/store.js';
import type { Dialect } from './database.js';
import type { Database } from './schema.js';

export class SqlAclPolicyStore implements AclPolicyStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async lockTenant(tenant: string): Promise<void> {
    if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`rampart.acl.${tenant}`}))`.execute(this.db);
  }

  async get(tenant: string, name: string): Promise<AclPolicyRecord | undefined> {
    const r = await this.db.selectFrom('acl_policies').selectAll().where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return r && { tenant: r.tenant, name: r.name, hcl: r.hcl, updatedAt: r.updated_at };
  }

  async list(tenant: string): Promise<AclPolicyRecord[]> {
    const rows = await this.db.selectFrom('acl_policies').selectAll().where('tenant', '=', tenant).orderBy('name').execute();
    return rows.map((r) => ({ tenant: r.tenant, name: r.name, hcl: r.hcl, updatedAt: r.updated_at }));
  }

  async put(p: AclPolicyRecord): Promise<void> {
    await this.db
      .insertInto('acl_policies')
      .values({ tenant: p.tenant, name: p.name, hcl: p.hcl, updated_at: p.updatedAt })
      .onConflict((oc) => oc.columns(['tenant', 'name']).doUpdateSet({ hcl: p.hcl, updated_at: p.updatedAt }))
      .execute();
  }

  async delete(tenant: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('acl_policies').where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
