import { DatabaseError } from '../../core/errors.js';
import { revokeRetryDelayMs } from '../leases/lease.js';
import { allowsRole } from './config.js';
import { type EngineDeps, requireConfig, rootUrl } from './connections.js';
import { generatePassword } from './credentials.js';
import { DEFAULT_ROTATION_STATEMENTS, type StaticRole, parseStaticRole, staticRoleRecordId } from './static-role.js';
import { renderStatement } from './statements.js';
import type { DatabaseStore } from './store.js';

/**
 * `<mount>/static-roles/<name>`: takes over an existing database user. A new static role gets a
 * fresh password at once (so only the engine knows it), as Vault does; an update keeps the
 * password and moves the next rotation to the last one plus the new period.
 */
export async function writeStaticRole(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string, body: Readonly<Record<string, unknown>>): Promise<StaticRole> {
  const existing = await store.getStaticRole(tenant, mount, name);
  const input = parseStaticRole(name, body, existing);
  const config = await requireConfig(store, tenant, mount, input.dbName);
  if (!allowsRole(config, name)) throw new DatabaseError('database.role_not_allowed', `"${name}" is not an allowed role of connection "${config.name}"`);
  if (existing) {
    const role: StaticRole = {
      ...existing,
      dbName: input.dbName,
      rotationPeriod: input.rotationPeriod,
      rotationStatements: input.rotationStatements,
      nextRotationAt: new Date(Date.parse(existing.lastRotatedAt) + input.rotationPeriod * 1000).toISOString(),
    };
    await store.putStaticRole(role);
    return role;
  }
  const root = rootUrl(config, deps.sealer);
  if (!(await deps.plugin.userExists(root.url, input.username))) {
    throw new DatabaseError('database.role_invalid', `the database has no user named ${JSON.stringify(input.username)}`);
  }
  const now = deps.clock.now();
  const draft: StaticRole = {
    tenant,
    mount,
    name,
    ...input,
    sealedPassword: '',
    lastRotatedAt: now.toISOString(),
    nextRotationAt: now.toISOString(),
    rotationAttempts: 0,
    lastError: null,
  };
  return rotate(store, deps, draft);
}

/**
 * Sets a new password for the static role's user and stores it: the database change commits only
 * once the store write succeeded, so the stored password is never behind the one in force.
 */
export async function rotate(store: DatabaseStore, deps: EngineDeps, role: StaticRole): Promise<StaticRole> {
  const config = await requireConfig(store, role.tenant, role.mount, role.dbName);
  const root = rootUrl(config, deps.sealer);
  const password = generatePassword();
  const statements = (role.rotationStatements.length > 0 ? role.rotationStatements : DEFAULT_ROTATION_STATEMENTS).map((s) => renderStatement(s, { name: role.username, password }));
  const pending = await deps.plugin.begin(root.url, statements, [password, root.password]);
  const now = deps.clock.now();
  const rotated: StaticRole = {
    ...role,
    sealedPassword: deps.sealer.encrypt(role.tenant, staticRoleRecordId(role.mount, role.name), Buffer.from(password, 'utf8')),
    lastRotatedAt: now.toISOString(),
    nextRotationAt: new Date(now.getTime() + role.rotationPeriod * 1000).toISOString(),
    rotationAttempts: 0,
    lastError: null,
  };
  try {
    await store.putStaticRole(rotated);
  } catch (err) {
    await pending.rollback();
    throw err;
  }
  await pending.commit();
  return rotated;
}

export async function requireStaticRole(store: DatabaseStore, tenant: string, mount: string, name: string): Promise<StaticRole> {
  const role = await store.getStaticRole(tenant, mount, name);
  if (!role) throw new DatabaseError('database.role_not_found', `unknown static role: ${name}`);
  return role;
}

/** `<mount>/static-creds/<name>`: the current password and the seconds until the next rotation. */
export function staticCredentials(role: StaticRole, deps: Pick<EngineDeps, 'sealer' | 'clock'>): Record<string, unknown> {
  const password = Buffer.from(deps.sealer.decrypt(role.tenant, staticRoleRecordId(role.mount, role.name), role.sealedPassword)).toString('utf8');
  return {
    username: role.username,
    password,
    last_vault_rotation: role.lastRotatedAt,
    rotation_period: role.rotationPeriod,
    ttl: Math.max(0, Math.floor((Date.parse(role.nextRotationAt) - deps.clock.now().getTime()) / 1000)),
  };
}

/** Records a failed scheduled rotation: retried with the lease revocation backoff. */
export function failedRotation(role: StaticRole, err: unknown, now: Date): StaticRole {
  const attempts = role.rotationAttempts + 1;
  return {
    ...role,
    rotationAttempts: attempts,
    nextRotationAt: new Date(now.getTime() + revokeRetryDelayMs(attempts)).toISOString(),
    lastError: (err instanceof Error ? err.message : String(err)).slice(0, 500),
  };
}
