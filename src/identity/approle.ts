import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { SecretsError } from '../core/errors.js';
import type { AppRoleRecord, AppRoleSecretIdRecord, AppRoleStore, TokenRecord, TokenStore } from './store.js';
import { addressAllowed } from './cidr.js';
import { hashSecret, secretMatches } from './token.js';
import { DEFAULT_TOKEN_TTL_MS, createToken } from './tokens.js';

/**
 * AppRole (Vault api-docs/auth/approle): a machine logs in with a role ID (an identifier, not a
 * secret) and a secret ID, and receives a token with the role's policies.
 *
 * A secret ID is `<accessor>.<secret>`: the accessor (96 bits, hex) finds the record, the secret
 * (256 bits) proves possession and is stored as SHA-256 only, compared in constant time, as
 * tokens are (src/identity/token.ts). Its use limit is spent by one conditional update inside
 * the login transaction, so two concurrent logins can never both spend the last use. Every way
 * a login can fail gets the same `secrets.login_failed` answer.
 */
const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const SECRET_ID_RE = /^([0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/;

export interface AppRoleSettings {
  readonly policies?: readonly string[] | undefined;
  readonly secretIdTtl?: number | undefined;
  readonly secretIdNumUses?: number | undefined;
  readonly tokenTtl?: number | undefined;
  readonly tokenMaxTtl?: number | undefined;
  readonly tokenPeriod?: number | undefined;
  /** Already validated (src/identity/cidr.ts `cidrListField`). */
  readonly secretIdBoundCidrs?: readonly string[] | undefined;
  readonly tokenBoundCidrs?: readonly string[] | undefined;
}

export function checkRoleName(name: string): void {
  if (!NAME_RE.test(name)) throw new SecretsError('secrets.invalid_request', 'a role name is 1–128 letters, digits, "_", "." or "-"');
}

/** Creates the role or updates the settings given; a new role gets a random role ID. */
export async function writeAppRole(store: AppRoleStore, clock: Clock, tenant: string, name: string, settings: AppRoleSettings): Promise<AppRoleRecord> {
  checkRoleName(name);
  const existing = await store.getRole(tenant, name);
  const role: AppRoleRecord = {
    tenant,
    name,
    roleId: existing?.roleId ?? randomUUID(),
    policies: settings.policies ?? existing?.policies ?? [],
    secretIdTtl: settings.secretIdTtl ?? existing?.secretIdTtl ?? 0,
    secretIdNumUses: settings.secretIdNumUses ?? existing?.secretIdNumUses ?? 0,
    tokenTtl: settings.tokenTtl ?? existing?.tokenTtl ?? 0,
    tokenMaxTtl: settings.tokenMaxTtl ?? existing?.tokenMaxTtl ?? 0,
    tokenPeriod: settings.tokenPeriod ?? existing?.tokenPeriod ?? 0,
    createdAt: existing?.createdAt ?? clock.now().toISOString(),
    secretIdBoundCidrs: settings.secretIdBoundCidrs ?? existing?.secretIdBoundCidrs ?? [],
    tokenBoundCidrs: settings.tokenBoundCidrs ?? existing?.tokenBoundCidrs ?? [],
  };
  await store.putRole(role);
  return role;
}

export async function requireAppRole(store: AppRoleStore, tenant: string, name: string): Promise<AppRoleRecord> {
  checkRoleName(name);
  const role = await store.getRole(tenant, name);
  if (!role) throw new SecretsError('secrets.not_found', `no role named "${name}"`);
  return role;
}

/** Issues a secret ID for the role; the returned `secretId` is the only copy of its secret. */
export async function generateSecretId(store: AppRoleStore, clock: Clock, role: AppRoleRecord): Promise<{ secretId: string; accessor: string }> {
  const accessor = randomBytes(12).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const now = clock.now();
  await store.insertSecretId({
    accessor,
    tenant: role.tenant,
    role: role.name,
    secretHash: hashSecret(secret),
    usesLeft: role.secretIdNumUses > 0 ? role.secretIdNumUses : undefined,
    createdAt: now.toISOString(),
    expiresAt: role.secretIdTtl > 0 ? new Date(now.getTime() + role.secretIdTtl * 1000).toISOString() : undefined,
  });
  return { secretId: `${accessor}.${secret}`, accessor };
}

function loginFailed(): SecretsError {
  return new SecretsError('secrets.login_failed', 'invalid role ID or secret ID');
}

/**
 * Checks the credentials, spends a use of the secret ID and creates the token, in the caller's
 * transaction. A login from outside the role's `secret_id_bound_cidrs` fails like any other,
 * before it spends a use: the answer does not tell a caller with a stolen secret ID that only
 * its address was wrong.
 */
export async function appRoleLogin(
  stores: { readonly appRoles: AppRoleStore; readonly tokens: TokenStore },
  clock: Clock,
  tenant: string,
  roleId: string,
  secretId: string,
  clientAddress: string | undefined,
): Promise<{ token: string; record: TokenRecord; role: AppRoleRecord }> {
  const role = await stores.appRoles.roleByRoleId(tenant, roleId);
  const parsed = SECRET_ID_RE.exec(secretId);
  const stored = parsed ? await stores.appRoles.getSecretId(parsed[1]!) : undefined;
  if (!role || !parsed || !stored || stored.tenant !== tenant || stored.role !== role.name || !secretMatches(parsed[2]!, stored.secretHash)) throw loginFailed();
  if (stored.expiresAt !== undefined && stored.expiresAt <= clock.now().toISOString()) throw loginFailed();
  if (!addressAllowed(role.secretIdBoundCidrs, clientAddress)) throw loginFailed();
  if (!(await stores.appRoles.consumeSecretId(stored.accessor))) throw loginFailed();
  const { token, record } = await createToken(stores.tokens, clock, {
    tenant,
    policies: [...new Set([...role.policies, 'default'])],
    displayName: `approle-${role.name}`,
    ttlMs: role.tokenTtl > 0 ? role.tokenTtl * 1000 : DEFAULT_TOKEN_TTL_MS,
    createdBy: `approle::${role.name}`,
    periodMs: role.tokenPeriod > 0 ? role.tokenPeriod * 1000 : undefined,
    explicitMaxTtlMs: role.tokenMaxTtl > 0 ? role.tokenMaxTtl * 1000 : undefined,
    renewable: true,
    boundCidrs: role.tokenBoundCidrs,
  });
  return { token, record, role };
}

/**
 * The secret ID record of a role named by the secret ID itself (lookup, destroy): undefined
 * unless the secret matches, compared in constant time, so the endpoints are no oracle.
 */
export async function findSecretId(store: AppRoleStore, role: AppRoleRecord, secretId: string): Promise<AppRoleSecretIdRecord | undefined> {
  const parsed = SECRET_ID_RE.exec(secretId);
  const stored = parsed ? await store.getSecretId(parsed[1]!) : undefined;
  if (!parsed || !stored || stored.tenant !== role.tenant || stored.role !== role.name || !secretMatches(parsed[2]!, stored.secretHash)) return undefined;
  return stored;
}
