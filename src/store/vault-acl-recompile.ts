import type { Kysely } from 'kysely';
import { systemClock } from '../core/clock.js';
import { SecretsError } from '../core/errors.js';
import { recompileAclPolicies } from '../secrets/acl/policies.js';
import { SqlAclPolicyStore } from './acl-policy-store.js';
import type { Dialect } from './database.js';
import { SqlPolicyStore } from './policy-store.js';
import type { Database } from './schema.js';

/**
 * Migration 0027: recompiles every tenant's Vault ACL policies with the current translation (on
 * PostgreSQL in the migration's transaction; on SQLite, whose Kysely migrations run outside one,
 * each tenant's new version commits on its own, and a rerun changes nothing). A tenant whose
 * compiled file is unchanged keeps its active version.
 *
 * A tenant that cannot be recompiled (its policies exceed the compiler's bounds, or it has no
 * active `rampart` policy set) keeps its previous compilation, with a process warning naming it,
 * rather than keeping every other tenant's server from starting; its next `sys/policy` write
 * answers the same error to the operator.
 */
export async function recompileVaultAcl(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const trx = db as Kysely<Database>;
  const ports = { aclPolicies: new SqlAclPolicyStore(trx, dialect), policies: new SqlPolicyStore(trx, dialect) };
  const tenants = await trx.selectFrom('acl_policies').select('tenant').distinct().orderBy('tenant').execute();
  for (const { tenant } of tenants) {
    try {
      await recompileAclPolicies(ports, systemClock, tenant, 'rampart', 'migration 0027: Vault ACL policies recompiled with Vault path precedence');
    } catch (err) {
      // Only refusals raised before any write (the compiler's, or a missing policy set) are
      // expected here; a database error aborts the migration as any other would.
      if (!(err instanceof SecretsError)) throw err;
      process.emitWarning(`tenant "${tenant}": Vault ACL policies not recompiled (${err.message}); they keep the previous translation, which unions matching rules`, { code: 'RAMPART_ACL_RECOMPILE' });
    }
  }
}
