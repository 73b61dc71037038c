import type { Kysely, Selectable } from 'kysely';
import type { TokenRoleRecord, TokenRoleStore } from '../identity/store.js';
import type { Database, VaultTokenRolesTable } from './schema.js';
import { cidrColumn, cidrsOfColumn } from './cidr-column.js';

export class SqlTokenRoleStore implements TokenRoleStore {
  constructor(private readonly db: Kysely<Database>) {}

  async get(tenant: string, name: string): Promise<TokenRoleRecord | undefined> {
    const r = await this.db.selectFrom('vault_token_roles').selectAll().where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return r && toRole(r);
  }

  async put(role: TokenRoleRecord): Promise<void> {
    const values = {
      allowed_policies: JSON.stringify(role.allowedPolicies),
      disallowed_policies: JSON.stringify(role.disallowedPolicies),
      orphan: role.orphan ? 1 : 0,
      renewable: role.renewable ? 1 : 0,
      path_suffix: role.pathSuffix,
      token_period: role.tokenPeriod,
      token_explicit_max_ttl: role.tokenExplicitMaxTtl,
      token_num_uses: role.tokenNumUses,
      token_no_default_policy: role.tokenNoDefaultPolicy ? 1 : 0,
      updated_at: role.updatedAt,
      token_bound_cidrs: cidrColumn(role.tokenBoundCidrs),
    };
    await this.db
      .insertInto('vault_token_roles')
      .values({ tenant: role.tenant, name: role.name, ...values })
      .onConflict((oc) => oc.columns(['tenant', 'name']).doUpdateSet(values))
      .execute();
  }

  async delete(tenant: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('vault_token_roles').where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async list(tenant: string): Promise<string[]> {
    const rows = await this.db.selectFrom('vault_token_roles').select('name').where('tenant', '=', tenant).orderBy('name').execute();
    return rows.map((r) => r.name);
  }
}

function toRole(r: Selectable<VaultTokenRolesTable>): TokenRoleRecord {
  return {
    tenant: r.tenant,
    name: r.name,
    allowedPolicies: JSON.parse(r.allowed_policies) as string[],
    disallowedPolicies: JSON.parse(r.disallowed_policies) as string[],
    orphan: Number(r.orphan) === 1,
    renewable: Number(r.renewable) === 1,
    pathSuffix: r.path_suffix,
    tokenPeriod: Number(r.token_period),
    tokenExplicitMaxTtl: Number(r.token_explicit_max_ttl),
    tokenNumUses: Number(r.token_num_uses),
    tokenNoDefaultPolicy: Number(r.token_no_default_policy) === 1,
    updatedAt: r.updated_at,
    tokenBoundCidrs: cidrsOfColumn(r.token_bound_cidrs),
  };
}
