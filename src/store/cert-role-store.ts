import type { Kysely, Selectable } from 'kysely';
import type { CertRoleRecord, CertRoleStore } from '../identity/store.js';
import type { CertRolesTable, Database } from './schema.js';

export class SqlCertRoleStore implements CertRoleStore {
  constructor(private readonly db: Kysely<Database>) {}

  async get(tenant: string, name: string): Promise<CertRoleRecord | undefined> {
    const r = await this.db.selectFrom('cert_roles').selectAll().where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return r && toRole(r);
  }

  async list(tenant: string): Promise<CertRoleRecord[]> {
    const rows = await this.db.selectFrom('cert_roles').selectAll().where('tenant', '=', tenant).orderBy('name').execute();
    return rows.map(toRole);
  }

  async put(role: CertRoleRecord): Promise<void> {
    const values = { allowed_spiffe_ids: JSON.stringify(role.allowedSpiffeIds), policies: JSON.stringify(role.policies), token_ttl: role.tokenTtl };
    await this.db
      .insertInto('cert_roles')
      .values({ tenant: role.tenant, name: role.name, created_at: role.createdAt, ...values })
      .onConflict((oc) => oc.columns(['tenant', 'name']).doUpdateSet(values))
      .execute();
  }

  async delete(tenant: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('cert_roles').where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

function toRole(r: Selectable<CertRolesTable>): CertRoleRecord {
  return {
    tenant: r.tenant,
    name: r.name,
    allowedSpiffeIds: JSON.parse(r.allowed_spiffe_ids) as string[],
    policies: JSON.parse(r.policies) as string[],
    tokenTtl: Number(r.token_ttl),
    createdAt: r.created_at,
  };
}
