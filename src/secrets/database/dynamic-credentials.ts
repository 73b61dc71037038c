import { DatabaseError } from '../../core/errors.js';
import type { LeaseBackend } from '../leases/backend.js';
import type { LeaseRecord } from '../leases/lease.js';
import { buildLease } from '../leases/lease-manager.js';
import type { LeaseStore } from '../leases/store.js';
import { allowsRole } from './config.js';
import { type EngineDeps, requireConfig, rootUrl } from './connections.js';
import { generatePassword, generateUsername } from './credentials.js';
import { effectiveTtls } from './role.js';
import { formatExpiration, renderStatement } from './statements.js';
import type { DatabaseStore } from './store.js';

/** The engine type name, as `sys/mounts` and the lease records know it. */
export const DATABASE_ENGINE = 'database';

/** What a database lease keeps (sealed) to renew and revoke its user later. */
interface LeaseData {
  /** The mount's accessor: the engine's records are keyed by it, so they survive a remount. */
  readonly mount: string;
  readonly db_name: string;
  readonly username: string;
  readonly revocation_statements: readonly string[];
  readonly renew_statements: readonly string[];
}

export interface IssuedCredential {
  readonly lease: LeaseRecord;
  readonly username: string;
  readonly password: string;
}

/**
 * `<mount>/creds/<role>`: creates a real database user with a random password and its lease,
 * both or neither. The creation statements run in a database transaction that commits only after
 * the lease row is written (in the caller's store transaction), so a failure on either side
 * leaves nothing behind: no user without a lease, no lease without a user. (Should the store
 * commit itself fail after that, the user still expires at its `VALID UNTIL`.)
 */
export async function issueCredential(
  stores: { readonly database: DatabaseStore; readonly leases: LeaseStore },
  deps: EngineDeps,
  request: { tenant: string; mount: { path: string; accessor: string; defaultLeaseTtl: number; maxLeaseTtl: number }; role: string; displayName: string },
): Promise<IssuedCredential> {
  const role = await stores.database.getRole(request.tenant, request.mount.accessor, request.role);
  if (!role) throw new DatabaseError('database.role_not_found', `unknown role: ${request.role}`);
  const config = await requireConfig(stores.database, request.tenant, request.mount.accessor, role.dbName);
  if (!allowsRole(config, role.name)) throw new DatabaseError('database.role_not_allowed', `"${role.name}" is not an allowed role of connection "${config.name}"`);
  const { ttl, maxTtl } = effectiveTtls(role, request.mount);
  const now = deps.clock.now();
  const username = generateUsername(request.displayName, role.name, now);
  const password = generatePassword();
  const expiration = formatExpiration(new Date(now.getTime() + ttl * 1000));
  const root = rootUrl(config, deps.sealer);
  const statements = role.creationStatements.map((s) => renderStatement(s, { name: username, password, expiration }));
  const pending = await deps.plugin.begin(root.url, statements, [password, root.password]);
  const data: LeaseData = { mount: request.mount.accessor, db_name: config.name, username, revocation_statements: role.revocationStatements, renew_statements: role.renewStatements };
  const lease = buildLease({ tenant: request.tenant, engine: DATABASE_ENGINE, mount: request.mount.path, role: role.name, ttlSeconds: ttl, maxTtlSeconds: maxTtl, renewable: true, data }, deps.sealer, deps.clock);
  try {
    await stores.leases.insert(lease);
  } catch (err) {
    await pending.rollback();
    throw err;
  }
  await pending.commit();
  return { lease, username, password };
}

/**
 * Renews and revokes database leases for the lease manager. Revocation runs the role's
 * `revocation_statements`, or the default drop; renewal its `renew_statements`, or
 * `ALTER ROLE … VALID UNTIL`.
 */
export class DatabaseLeaseBackend implements LeaseBackend<{ readonly database: DatabaseStore }> {
  constructor(private readonly deps: EngineDeps) {}

  async revoke(lease: LeaseRecord, data: unknown, stores: { readonly database: DatabaseStore }): Promise<void> {
    const d = data as LeaseData;
    const config = await stores.database.getConfig(lease.tenant, d.mount, d.db_name);
    // Fail closed: without its connection the user cannot be dropped, so the lease stays and
    // the failure is retried and alerted on rather than forgotten.
    if (!config) throw new DatabaseError('database.config_not_found', `connection "${d.db_name}" of lease ${lease.leaseId} no longer exists`);
    const root = rootUrl(config, this.deps.sealer);
    if (d.revocation_statements.length === 0) return this.deps.plugin.dropUser(root.url, d.username);
    await this.deps.plugin.execute(root.url, d.revocation_statements.map((s) => renderStatement(s, { name: d.username })), [root.password]);
  }

  /**
   * The expiry worker's batches: users of one connection with the default revocation are dropped
   * in one transaction; should that fail, one by one, so one bad user does not hold up the rest.
   */
  async revokeMany(items: ReadonlyArray<{ readonly lease: LeaseRecord; readonly data: unknown }>, stores: { readonly database: DatabaseStore }): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>();
    const groups = new Map<string, Array<{ lease: LeaseRecord; data: LeaseData }>>();
    for (const item of items) {
      const d = item.data as LeaseData;
      if (d.revocation_statements.length > 0) {
        await this.revoke(item.lease, d, stores).catch((err: unknown) => failed.set(item.lease.leaseId, err));
        continue;
      }
      const key = `${item.lease.tenant}\u0000${d.mount}\u0000${d.db_name}`;
      groups.set(key, [...(groups.get(key) ?? []), { lease: item.lease, data: d }]);
    }
    for (const group of groups.values()) {
      const { lease, data } = group[0]!;
      try {
        const config = await stores.database.getConfig(lease.tenant, data.mount, data.db_name);
        if (!config) throw new DatabaseError('database.config_not_found', `connection "${data.db_name}" of lease ${lease.leaseId} no longer exists`);
        const root = rootUrl(config, this.deps.sealer);
        try {
          await this.deps.plugin.dropUsers(root.url, group.map((g) => g.data.username));
        } catch (err) {
          if (group.length === 1) throw err;
          for (const g of group) await this.deps.plugin.dropUser(root.url, g.data.username).catch((e: unknown) => failed.set(g.lease.leaseId, e));
        }
      } catch (err) {
        for (const g of group) failed.set(g.lease.leaseId, err);
      }
    }
    return failed;
  }

  async renew(lease: LeaseRecord, data: unknown, expiresAt: Date, stores: { readonly database: DatabaseStore }): Promise<void> {
    const d = data as LeaseData;
    const config = await stores.database.getConfig(lease.tenant, d.mount, d.db_name);
    if (!config) throw new DatabaseError('database.config_not_found', `connection "${d.db_name}" of lease ${lease.leaseId} no longer exists`);
    const root = rootUrl(config, this.deps.sealer);
    const statements = d.renew_statements.length > 0 ? d.renew_statements : [`ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`];
    await this.deps.plugin.execute(root.url, statements.map((s) => renderStatement(s, { name: d.username, expiration: formatExpiration(expiresAt) })), [root.password]);
  }
}
