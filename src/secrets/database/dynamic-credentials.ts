import { DatabaseError } from '../../core/errors.js';
import type { LeaseBackend } from '../leases/backend.js';
import type { LeaseRecord } from '../leases/lease.js';
import { buildLease } from '../leases/lease-manager.js';
import type { LeaseStore, LeaseTransact } from '../leases/store.js';
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

/** What `creds/<role>` needs to know about the request. */
export interface CredentialRequest {
  readonly tenant: string;
  readonly mount: { readonly path: string; readonly accessor: string; readonly defaultLeaseTtl: number; readonly maxLeaseTtl: number };
  readonly role: string;
  readonly displayName: string;
}

/**
 * How long a user created by {@link createCredential} may wait for {@link recordCredential}
 * before the expiry worker drops it. A request records it within milliseconds; this only bounds
 * how long a user outlives a request that failed or a process that died in between.
 */
export const PROVISIONAL_LEASE_MS = 5 * 60_000;

/** The user to create and its lease: what both ways of issuing share. */
async function planCredential(
  database: DatabaseStore,
  deps: EngineDeps,
  request: CredentialRequest,
): Promise<IssuedCredential & { readonly url: string; readonly statements: readonly string[]; readonly secrets: readonly string[] }> {
  const role = await database.getRole(request.tenant, request.mount.accessor, request.role);
  if (!role) throw new DatabaseError('database.role_not_found', `unknown role: ${request.role}`);
  const config = await requireConfig(database, request.tenant, request.mount.accessor, role.dbName);
  if (!allowsRole(config, role.name)) throw new DatabaseError('database.role_not_allowed', `"${role.name}" is not an allowed role of connection "${config.name}"`);
  const { ttl, maxTtl } = effectiveTtls(role, request.mount);
  const now = deps.clock.now();
  const username = generateUsername(request.displayName, role.name, now);
  const password = generatePassword();
  const expiration = formatExpiration(new Date(now.getTime() + ttl * 1000));
  const root = rootUrl(config, deps.sealer);
  const statements = role.creationStatements.map((s) => renderStatement(s, { name: username, password, expiration }));
  const data: LeaseData = { mount: request.mount.accessor, db_name: config.name, username, revocation_statements: role.revocationStatements, renew_statements: role.renewStatements };
  const lease = buildLease({ tenant: request.tenant, engine: DATABASE_ENGINE, mount: request.mount.path, role: role.name, ttlSeconds: ttl, maxTtlSeconds: maxTtl, renewable: true, data }, deps.sealer, deps.clock);
  return { lease, username, password, url: root.url, statements, secrets: [password, root.password] };
}

/**
 * `<mount>/creds/<role>`, first half, run before the request's store transaction: creates a
 * real database user with a random password, committed on the target, behind a provisional lease.
 *
 * `CREATE ROLE` is slow (PostgreSQL derives the SCRAM verifier, takes a lock on pg_authid and
 * flushes its WAL), and a store transaction must not wait on it: on SQLite it would hold the
 * only writer, and with it every other request's commit. So the lease is written first, on its
 * own, due for revocation {@link PROVISIONAL_LEASE_MS} from now; then the user is created; then
 * {@link recordCredential}, in the request's transaction with its audit event, gives the lease
 * its real expiry. Whatever fails in between — the target, the request's transaction, the
 * process — the provisional lease is there and the expiry worker drops the user (dropping a
 * user that was never created succeeds), so no user is ever left without a lease. This is
 * Vault's order too: it revokes a secret whose lease could not be registered.
 */
export async function createCredential(
  stores: { readonly database: DatabaseStore; readonly transact: LeaseTransact },
  deps: EngineDeps,
  request: CredentialRequest,
): Promise<IssuedCredential> {
  const { lease, username, password, url, statements, secrets } = await planCredential(stores.database, deps, request);
  const now = deps.clock.now();
  const provisionalUntil = new Date(Math.min(now.getTime() + PROVISIONAL_LEASE_MS, Date.parse(lease.expiresAt))).toISOString();
  // Its own (group-committed) transaction, durable before the user exists. It carries no audit
  // event: the lease is announced when recorded, or its revocation is audited.
  await stores.transact((s) => s.leases.insert({ ...lease, revokeAfter: provisionalUntil }));
  try {
    await deps.plugin.execute(url, statements, secrets);
  } catch (err) {
    // Nothing was created: the provisional lease goes now rather than at its deadline.
    await stores.transact((s) => s.leases.delete(lease.tenant, lease.leaseId)).catch(() => undefined);
    throw err;
  }
  return { lease, username, password };
}

/**
 * `<mount>/creds/<role>`, second half, inside the request's transaction (with its audit event):
 * replaces the provisional lease by the real one. Fails when the provisional lease is gone (the
 * expiry worker already dropped the user), so a client never receives a dropped user.
 */
export async function recordCredential(leases: LeaseStore, issued: IssuedCredential): Promise<void> {
  if (!(await leases.delete(issued.lease.tenant, issued.lease.leaseId))) {
    throw new DatabaseError('database.unavailable', `the user of lease ${issued.lease.leaseId} was revoked before its lease was recorded; request new credentials`);
  }
  await leases.insert(issued.lease);
}

/**
 * `<mount>/creds/<role>` in one step, for a caller already inside its store transaction (no step
 * before it): creates the user and its lease, both or neither. The creation statements run in a
 * target transaction that commits only after the lease row is written, so a failure on either
 * side leaves nothing behind. (Should the store commit itself fail after that, the user still
 * expires at its `VALID UNTIL`.) It holds the store transaction open across `CREATE ROLE`:
 * prefer {@link createCredential} before the transaction and {@link recordCredential} in it.
 */
export async function issueCredential(
  stores: { readonly database: DatabaseStore; readonly leases: LeaseStore },
  deps: EngineDeps,
  request: CredentialRequest,
): Promise<IssuedCredential> {
  const { lease, username, password, url, statements, secrets } = await planCredential(stores.database, deps, request);
  const pending = await deps.plugin.begin(url, statements, secrets);
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
