import { DatabaseError } from '../../core/errors.js';
import { revokeRetryDelayMs } from '../leases/lease.js';
import { allowsRole } from './config.js';
import { type DatabaseTransact, type EngineDeps, inStore, requireConfig, rootUrl } from './connections.js';
import { generatePassword } from './credentials.js';
import { PENDING_ROTATION_MS, hasPending, openCurrent, sameSlot, sealCurrent, sealPending } from './password-slot.js';
import { DEFAULT_ROTATION_STATEMENTS, type StaticRole, parseStaticRole, staticRoleRecordId } from './static-role.js';
import { renderStatement } from './statements.js';
import type { DatabaseStore } from './store.js';

/**
 * `<mount>/static-roles/<name>` for a role that exists: a new period and statements. The password
 * stays; the next rotation moves to the last one plus the new period. No call to the target.
 */
export async function updateStaticRole(store: DatabaseStore, existing: StaticRole, body: Readonly<Record<string, unknown>>): Promise<StaticRole> {
  const input = parseStaticRole(existing.name, body, existing);
  const config = await requireConfig(store, existing.tenant, existing.mount, input.dbName);
  if (!allowsRole(config, existing.name)) throw new DatabaseError('database.role_not_allowed', `"${existing.name}" is not an allowed role of connection "${config.name}"`);
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

/**
 * `<mount>/static-roles/<name>` for a new role, checked against the target (the user must exist)
 * but not stored: the role it returns is the draft that {@link beginStaticRotation} takes over,
 * as Vault does, with a fresh password so that only the engine knows it.
 */
export async function draftStaticRole(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string, body: Readonly<Record<string, unknown>>): Promise<StaticRole> {
  const input = parseStaticRole(name, body, undefined);
  const config = await requireConfig(store, tenant, mount, input.dbName);
  if (!allowsRole(config, name)) throw new DatabaseError('database.role_not_allowed', `"${name}" is not an allowed role of connection "${config.name}"`);
  if (!(await deps.plugin.userExists(rootUrl(config, deps.sealer).url, input.username))) {
    throw new DatabaseError('database.role_invalid', `the database has no user named ${JSON.stringify(input.username)}`);
  }
  const now = deps.clock.now().toISOString();
  return { tenant, mount, name, ...input, sealedPassword: '', lastRotatedAt: now, nextRotationAt: now, rotationAttempts: 0, lastError: null };
}

/** `<mount>/static-roles/<name>` in one go on one store: an update, or a new role and its first rotation. */
export async function writeStaticRole(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string, body: Readonly<Record<string, unknown>>): Promise<StaticRole> {
  const existing = await store.getStaticRole(tenant, mount, name);
  if (existing) return updateStaticRole(store, existing, body);
  return rotate(store, deps, await draftStaticRole(store, deps, tenant, mount, name, body), true);
}

/** A static role's password rotation under way: the new password is pending in the record. */
export interface StaticRotationStep {
  /** The record as step 1 wrote it. */
  readonly role: StaticRole;
  readonly password: string;
  /** True when the role did not exist before this rotation (its draft was written by step 1). */
  readonly isNew: boolean;
  readonly url: string;
  readonly statements: readonly string[];
  readonly secrets: readonly string[];
}

/**
 * Rotation step 1, in a store transaction of its own, committed before the target is touched:
 * seals a new password into the record as pending and makes the role due again
 * {@link PENDING_ROTATION_MS} from now, so that if the rotation never finishes (the process dies)
 * the scheduled rotation sets a password anew. `role` is a stored role (re-read here), or the
 * draft of a new one (`isNew`). Refused while another rotation of the role is in flight.
 */
export async function beginStaticRotation(store: DatabaseStore, deps: EngineDeps, role: StaticRole, isNew = false): Promise<StaticRotationStep> {
  const stored = await store.getStaticRole(role.tenant, role.mount, role.name);
  const now = deps.clock.now();
  if (!isNew && !stored) throw new DatabaseError('database.role_not_found', `unknown static role: ${role.name}`);
  if (stored && hasPending(stored) && Date.parse(stored.nextRotationAt) > now.getTime()) {
    throw new DatabaseError('database.role_invalid', `a password rotation of "${role.name}" is in progress; retry`);
  }
  const base = isNew ? role : stored!;
  const config = await requireConfig(store, base.tenant, base.mount, base.dbName);
  const root = rootUrl(config, deps.sealer);
  const password = generatePassword();
  const statements = (base.rotationStatements.length > 0 ? base.rotationStatements : DEFAULT_ROTATION_STATEMENTS).map((s) => renderStatement(s, { name: base.username, password }));
  const marked: StaticRole = {
    ...base,
    ...sealPending(deps.sealer, base.tenant, staticRoleRecordId(base.mount, base.name), password),
    nextRotationAt: new Date(now.getTime() + PENDING_ROTATION_MS).toISOString(),
  };
  await store.putStaticRole(marked);
  return { role: marked, password, isNew, url: root.url, statements, secrets: [password, root.password] };
}

/**
 * Rotation step 2, outside any store transaction: sets the password on the target and commits
 * there. On failure the target may or may not have taken it: an existing role keeps the pending
 * password and is rotated anew when due; a new role's draft is removed (the request failed, and
 * nothing of it stays), to be written again.
 */
export async function applyStaticRotation(transact: DatabaseTransact, deps: EngineDeps, step: StaticRotationStep): Promise<void> {
  try {
    await deps.plugin.execute(step.url, step.statements, step.secrets);
  } catch (err) {
    if (step.isNew) {
      const { tenant, mount, name } = step.role;
      await transact(async ({ database }) => {
        const stored = await database.getStaticRole(tenant, mount, name);
        if (stored && sameSlot(stored, step.role)) await database.deleteStaticRole(tenant, mount, name);
      }).catch(() => undefined);
    }
    throw err;
  }
}

/**
 * Rotation step 3, in the transaction that records it (with the request's audit event, or the
 * scheduled rotation's change event): the pending password becomes current and the next rotation
 * is a period away.
 */
export async function finishStaticRotation(store: DatabaseStore, deps: EngineDeps, step: StaticRotationStep): Promise<StaticRole> {
  const { tenant, mount, name } = step.role;
  const stored = await store.getStaticRole(tenant, mount, name);
  if (!stored || !sameSlot(stored, step.role)) {
    throw new DatabaseError('database.role_invalid', `the static role "${name}" changed during its password rotation; it is rotated again when due`);
  }
  const now = deps.clock.now();
  const rotated: StaticRole = {
    ...stored,
    ...sealCurrent(deps.sealer, tenant, staticRoleRecordId(mount, name), step.password),
    lastRotatedAt: now.toISOString(),
    nextRotationAt: new Date(now.getTime() + stored.rotationPeriod * 1000).toISOString(),
    rotationAttempts: 0,
    lastError: null,
  };
  await store.putStaticRole(rotated);
  return rotated;
}

/** A password rotation in one go on one store: {@link beginStaticRotation}, {@link applyStaticRotation}, {@link finishStaticRotation}. */
export async function rotate(store: DatabaseStore, deps: EngineDeps, role: StaticRole, isNew = false): Promise<StaticRole> {
  const step = await beginStaticRotation(store, deps, role, isNew);
  await applyStaticRotation(inStore(store), deps, step);
  return finishStaticRotation(store, deps, step);
}

export async function requireStaticRole(store: DatabaseStore, tenant: string, mount: string, name: string): Promise<StaticRole> {
  const role = await store.getStaticRole(tenant, mount, name);
  if (!role) throw new DatabaseError('database.role_not_found', `unknown static role: ${name}`);
  return role;
}

/** `<mount>/static-creds/<name>`: the current password and the seconds until the next rotation. */
export function staticCredentials(role: StaticRole, deps: Pick<EngineDeps, 'sealer' | 'clock'>): Record<string, unknown> {
  const password = openCurrent(deps.sealer, role.tenant, staticRoleRecordId(role.mount, role.name), role);
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
