import type { Kysely, Selectable } from 'kysely';
import type { AppRoleRecord, AppRoleSecretIdRecord, AppRoleStore } from '../identity/store.js';
import type { AppRoleRolesTable, Database } from './schema.js';
import { cidrColumn, cidrsOfColumn } from './cidr-column.js';

export class SqlAppRoleStore implements AppRoleStore {
  constructor(private readonly db: Kysely<Database>) {}

  async getRole(tenant: string, name: string): Promise<AppRoleRecord | undefined> {
    const r = await this.db.selectFrom('approle_roles').selectAll().where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return r && toRole(r);
  }

  async roleByRoleId(tenant: string, roleId: string): Promise<AppRoleRecord | undefined> {
    const r = await this.db.selectFrom('approle_roles').selectAll().where('tenant', '=', tenant).where('role_id', '=', roleId).executeTakeFirst();
    return r && toRole(r);
  }

  async putRole(role: AppRoleRecord): Promise<void> {
    const values = {
      role_id: role.roleId,
      policies: JSON.stringify(role.policies),
      secret_id_ttl: role.secretIdTtl,
      secret_id_num_uses: role.secretIdNumUses,
      token_ttl: role.tokenTtl,
      token_max_ttl: role.tokenMaxTtl,
      token_period: role.tokenPeriod,
      secret_id_bound_cidrs: cidrColumn(role.secretIdBoundCidrs),
      token_bound_cidrs: cidrColumn(role.tokenBoundCidrs),
    };
    await this.db
      .insertInto('approle_roles')
      .values({ tenant: role.tenant, name: role.name, created_at: role.createdAt, ...values })
      .onConflict((oc) => oc.columns(['tenant', 'name']).doUpdateSet(values))
      .execute();
  }

  async deleteRole(tenant: string, name: string): Promise<boolean> {
    await this.db.deleteFrom('approle_secret_ids').where('tenant', '=', tenant).where('role', '=', name).execute();
    const r = await this.db.deleteFrom('approle_roles').where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listRoles(tenant: string): Promise<string[]> {
    const rows = await this.db.selectFrom('approle_roles').select('name').where('tenant', '=', tenant).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  async insertSecretId(s: AppRoleSecretIdRecord): Promise<void> {
    await this.db
      .insertInto('approle_secret_ids')
      .values({
        accessor: s.accessor,
        tenant: s.tenant,
        role: s.role,
        secret_hash: s.secretHash,
        uses_left: s.usesLeft ?? null,
        created_at: s.createdAt,
        expires_at: s.expiresAt ?? null,
      })
      .execute();
  }

  async getSecretId(accessor: string): Promise<AppRoleSecretIdRecord | undefined> {
    const r = await this.db.selectFrom('approle_secret_ids').selectAll().where('accessor', '=', accessor).executeTakeFirst();
    return (
      r && {
        accessor: r.accessor,
        tenant: r.tenant,
        role: r.role,
        secretHash: r.secret_hash,
        usesLeft: r.uses_left === null ? undefined : Number(r.uses_left),
        createdAt: r.created_at,
        expiresAt: r.expires_at ?? undefined,
      }
    );
  }

  async consumeSecretId(accessor: string): Promise<boolean> {
    const row = await this.db.selectFrom('approle_secret_ids').select('uses_left').where('accessor', '=', accessor).executeTakeFirst();
    if (!row) return false;
    if (row.uses_left === null) return true;
    // One conditional statement: of two concurrent logins only one sees a use left.
    const r = await this.db
      .updateTable('approle_secret_ids')
      .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
      .where('accessor', '=', accessor)
      .where('uses_left', '>', 0)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return false;
    await this.db.deleteFrom('approle_secret_ids').where('accessor', '=', accessor).where('uses_left', '<=', 0).execute();
    return true;
  }

  async deleteSecretId(accessor: string): Promise<boolean> {
    const r = await this.db.deleteFrom('approle_secret_ids').where('accessor', '=', accessor).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

function toRole(r: Selectable<AppRoleRolesTable>): AppRoleRecord {
  return {
    tenant: r.tenant,
    name: r.name,
    roleId: r.role_id,
    policies: JSON.parse(r.policies) as string[],
    secretIdTtl: Number(r.secret_id_ttl),
    secretIdNumUses: Number(r.secret_id_num_uses),
    tokenTtl: Number(r.token_ttl),
    tokenMaxTtl: Number(r.token_max_ttl),
    tokenPeriod: Number(r.token_period),
    createdAt: r.created_at,
    secretIdBoundCidrs: cidrsOfColumn(r.secret_id_bound_cidrs),
    tokenBoundCidrs: cidrsOfColumn(r.token_bound_cidrs),
  };
}
