import type { Kysely } from 'kysely';
import { systemClock } from '../core/clock.js';
import { recompileAclPolicies } from '../secrets/acl/policies.js';
import { SqlAclPolicyStore } from './acl-policy-store.js';
import type { Dialect } from './database.js';
import { SqlPolicyStore } from './policy-store.js';
import type { Database } from './schema.js';

/**
 * Migration 0027: recompiles every tenant's Vault ACL policies with the current translation,
 * inside the migration's transaction. A tenant whose compiled file is unchanged (no policy whose
 * meaning precedence changes) keeps its active version.
 */
export async function recompileVaultAcl(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const trx = db as Kysely<Database>;
  const ports = { aclPolicies: new SqlAclPolicyStore(trx, dialect), policies: new SqlPolicyStore(trx, dialect) };
  const tenants = await trx.selectFrom('acl_policies').select('tenant').distinct().orderBy('tenant').execute();
  for (const { tenant } of tenants) {
    await recompileAclPolicies(ports, systemClock, tenant, 'rampart', 'migration 0027: Vault ACL policies recompiled with Vault path precedence');
  }
}
