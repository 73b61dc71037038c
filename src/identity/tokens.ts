import type { Clock } from '../core/clock.js';
import { AuthError, SecretsError, TokenError } from '../core/errors.js';
import { addressAllowed } from './cidr.js';
import type { Principal } from './principal.js';
import type { TokenRecord, TokenStore } from './store.js';
import { mintToken, parseToken, secretMatches } from './token.js';

export const DEFAULT_TOKEN_TTL_MS = 24 * 3_600_000;
/** As Vault's default max TTL: 32 days. */
export const MAX_TOKEN_TTL_MS = 768 * 3_600_000;

export interface TokenInfo {
  readonly accessor: string;
  readonly tenant: string;
  readonly policies: readonly string[];
  readonly display_name: string;
  readonly created_at: string;
  readonly expires_at: string | null;
  readonly revoked: boolean;
}

export function tokenInfo(record: TokenRecord): TokenInfo {
  return {
    accessor: record.accessor,
    tenant: record.tenant,
    policies: record.policies,
    display_name: record.displayName,
    created_at: record.createdAt,
    expires_at: record.expiresAt,
    revoked: record.revokedAt !== null,
  };
}

export interface CreateTokenInput {
  readonly tenant: string;
  readonly policies: readonly string[];
  readonly displayName: string;
  /** Undefined means a token that never expires (the bootstrap admin token only). */
  readonly ttlMs: number | undefined;
  readonly createdBy: string | null;
  /** Vault semantics (auth/token/create): see the fields of TokenRecord. */
  readonly parent?: string | undefined;
  readonly periodMs?: number | undefined;
  readonly explicitMaxTtlMs?: number | undefined;
  readonly renewable?: boolean | undefined;
  /** Vault `num_uses`: 0 or undefined for unlimited. */
  readonly numUses?: number | undefined;
  readonly role?: string | undefined;
  readonly creationPath?: string | undefined;
  /** CIDR blocks the token may be used from (validated by src/identity/cidr.ts); empty or undefined: anywhere. */
  readonly boundCidrs?: readonly string[] | undefined;
  /**
   * The token the request was authenticated with, when one was: a use-limited token may not
   * create tokens (whichever API asks), or every use limit could be escaped by minting a fresh,
   * unlimited token with one of its uses (Vault: "restricted use token cannot generate child tokens").
   */
  readonly creator?: TokenRecord | undefined;
}

/** The most uses a token may be given; Vault has no cap, this one only bounds the column. */
export const MAX_TOKEN_USES = 1_000_000_000;

/** Creates a token; the returned `token` string is the only copy of its secret. */
export async function createToken(
  store: TokenStore,
  clock: Clock,
  input: CreateTokenInput,
): Promise<{ token: string; record: TokenRecord }> {
  if (input.ttlMs !== undefined && (input.ttlMs <= 0 || input.ttlMs > MAX_TOKEN_TTL_MS)) {
    throw new TokenError('token.ttl_invalid', `ttl must be between 1s and ${MAX_TOKEN_TTL_MS / 3_600_000}h`);
  }
  for (const extra of [input.periodMs, input.explicitMaxTtlMs]) {
    if (extra !== undefined && (extra <= 0 || extra > MAX_TOKEN_TTL_MS)) {
      throw new TokenError('token.ttl_invalid', `period and explicit_max_ttl must be between 1s and ${MAX_TOKEN_TTL_MS / 3_600_000}h`);
    }
  }
  if (input.creator?.numUses !== undefined) {
    throw new TokenError('token.use_limited', 'restricted use token cannot generate child tokens');
  }
  const numUses = input.numUses ?? 0;
  if (!Number.isSafeInteger(numUses) || numUses < 0 || numUses > MAX_TOKEN_USES) {
    throw new TokenError('token.uses_invalid', `num_uses must be between 0 (unlimited) and ${MAX_TOKEN_USES}`);
  }
  const minted = mintToken();
  const now = clock.now();
  // A periodic token lives one period at a time; an explicit max TTL caps every expiry.
  const ttlMs = Math.min(input.periodMs ?? input.ttlMs ?? Infinity, input.explicitMaxTtlMs ?? Infinity);
  const record: TokenRecord = {
    accessor: minted.accessor,
    tenant: input.tenant,
    secretHash: minted.secretHash,
    policies: [...new Set(input.policies)].sort(),
    displayName: input.displayName,
    createdBy: input.createdBy,
    createdAt: now.toISOString(),
    expiresAt: ttlMs === Infinity ? null : new Date(now.getTime() + ttlMs).toISOString(),
    revokedAt: null,
    ...(input.parent === undefined ? {} : { parent: input.parent }),
    ...(input.periodMs === undefined ? {} : { period: Math.floor(input.periodMs / 1000) }),
    ...(input.renewable === undefined ? {} : { renewable: input.renewable, creationTtl: ttlMs === Infinity ? 0 : Math.floor(ttlMs / 1000) }),
    ...(input.explicitMaxTtlMs === undefined ? {} : { explicitMaxExpiresAt: new Date(now.getTime() + input.explicitMaxTtlMs).toISOString() }),
    ...(numUses === 0 ? {} : { numUses, usesLeft: numUses }),
    ...(input.role === undefined ? {} : { role: input.role }),
    ...(input.creationPath === undefined ? {} : { creationPath: input.creationPath }),
    ...(input.boundCidrs === undefined || input.boundCidrs.length === 0 ? {} : { boundCidrs: [...input.boundCidrs] }),
  };
  await store.insert(record);
  return { token: minted.token, record };
}

/**
 * Resolves a presented bearer token to its principal, or throws the AuthError that says why not.
 * A token that is malformed and one whose accessor is unknown get the same answer, so the
 * response does not confirm that an accessor exists. A token bound to CIDR blocks is refused
 * from any other `clientAddress`, before it spends a use (Vault: `RemoteAddrIsOk` in CheckToken).
 */
export async function authenticateToken(
  store: TokenStore,
  clock: Clock,
  presented: string,
  clientAddress: string | undefined,
): Promise<{ principal: Principal; record: TokenRecord }> {
  const parsed = parseToken(presented);
  const record = parsed ? await store.get(parsed.accessor) : undefined;
  if (!parsed || !record || !secretMatches(parsed.secret, record.secretHash)) {
    throw new AuthError('auth.token_invalid', 'the token is not recognised');
  }
  // A use-limited token revoked by its last use says so: operators read the audit log by code.
  if (record.usesLeft === 0) throw new AuthError('auth.token_exhausted', 'the token has no uses left');
  if (record.revokedAt !== null) throw new AuthError('auth.token_revoked', 'the token has been revoked');
  const now = clock.now().toISOString();
  if (record.expiresAt !== null && record.expiresAt <= now) {
    throw new AuthError('auth.token_expired', 'the token has expired');
  }
  if (record.boundCidrs && !addressAllowed(record.boundCidrs, clientAddress)) {
    throw new AuthError('auth.source_address_refused', 'the token may not be used from this client address');
  }
  // Every authenticated request spends a use, as in Vault, whatever is decided after; the
  // request that spends the last one still runs, and the token is revoked with it.
  let used = record;
  if (record.usesLeft !== undefined) {
    const left = await store.spendUse(record.accessor, now);
    if (left === undefined) throw new AuthError('auth.token_exhausted', 'the token has no uses left');
    used = { ...record, usesLeft: left };
  }
  return {
    principal: {
      type: 'Rampart::Token',
      id: record.accessor,
      tenant: record.tenant,
      roles: record.policies,
      authMethod: 'token',
      displayName: record.displayName,
    },
    record: used,
  };
}

/** Looks a token up within one tenant; a token of another tenant is reported as absent. */
export async function lookupToken(store: TokenStore, tenant: string, accessor: string): Promise<TokenRecord> {
  const record = await store.get(accessor);
  if (!record || record.tenant !== tenant) throw new TokenError('token.not_found', 'no token with that accessor in this tenant');
  return record;
}

/** Revokes the token and every token created under it (see {@link revokeTokenTree}), whichever API asks. */
export async function revokeToken(store: TokenStore, clock: Clock, tenant: string, accessor: string): Promise<void> {
  await revokeTokenTree(store, clock, tenant, accessor);
}

/**
 * Renews a token (Vault auth/token/renew): the new expiry is now + `incrementMs` (default: the
 * period for a periodic token, else its creation TTL), never past its explicit max TTL, and
 * never shorter than what it has. Throws `secrets.token_not_renewable` for a token created
 * without renewal (every `POST /v1/tokens` token, the bootstrap token) or one at its max.
 */
export async function renewToken(store: TokenStore, clock: Clock, record: TokenRecord, incrementMs: number | undefined): Promise<TokenRecord> {
  if (record.revokedAt !== null) throw new TokenError('token.not_found', 'the token has been revoked');
  if (record.renewable !== true || record.expiresAt === null) throw new SecretsError('secrets.token_not_renewable', 'the token is not renewable');
  const now = clock.now().getTime();
  const step = record.period ? record.period * 1000 : (incrementMs ?? (record.creationTtl ?? 0) * 1000);
  if (step <= 0 || step > MAX_TOKEN_TTL_MS) throw new TokenError('token.ttl_invalid', 'increment must be between 1s and 768h');
  const cap = record.explicitMaxExpiresAt === undefined ? Infinity : Date.parse(record.explicitMaxExpiresAt);
  if (cap <= now) throw new SecretsError('secrets.token_not_renewable', 'the token reached its explicit max TTL');
  const expires = new Date(Math.max(Date.parse(record.expiresAt), Math.min(now + step, cap))).toISOString();
  if (!(await store.renew(record.tenant, record.accessor, expires))) throw new TokenError('token.not_found', 'no token with that accessor in this tenant');
  return { ...record, expiresAt: expires };
}

/**
 * Revokes a token and, depth first, every token it created (Vault: children are revoked with
 * their parent; orphans have no parent). Returns the accessors revoked, the given one first.
 */
export async function revokeTokenTree(store: TokenStore, clock: Clock, tenant: string, accessor: string): Promise<string[]> {
  if (!(await store.revoke(tenant, accessor, clock.now().toISOString()))) {
    throw new TokenError('token.not_found', 'no token with that accessor in this tenant');
  }
  const revoked = [accessor];
  const pending = await store.children(tenant, accessor);
  const seen = new Set(revoked);
  while (pending.length > 0) {
    const child = pending.pop()!;
    if (seen.has(child)) continue;
    seen.add(child);
    await store.revoke(tenant, child, clock.now().toISOString());
    revoked.push(child);
    pending.push(...(await store.children(tenant, child)));
  }
  return revoked;
}
