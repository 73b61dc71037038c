import type { Clock } from '../core/clock.js';
import { AuthError, TokenError } from '../core/errors.js';
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
}

/** Creates a token; the returned `token` string is the only copy of its secret. */
export async function createToken(
  store: TokenStore,
  clock: Clock,
  input: CreateTokenInput,
): Promise<{ token: string; record: TokenRecord }> {
  if (input.ttlMs !== undefined && (input.ttlMs <= 0 || input.ttlMs > MAX_TOKEN_TTL_MS)) {
    throw new TokenError('token.ttl_invalid', `ttl must be between 1s and ${MAX_TOKEN_TTL_MS / 3_600_000}h`);
  }
  const minted = mintToken();
  const now = clock.now();
  const record: TokenRecord = {
    accessor: minted.accessor,
    tenant: input.tenant,
    secretHash: minted.secretHash,
    policies: [...new Set(input.policies)].sort(),
    displayName: input.displayName,
    createdBy: input.createdBy,
    createdAt: now.toISOString(),
    expiresAt: input.ttlMs === undefined ? null : new Date(now.getTime() + input.ttlMs).toISOString(),
    revokedAt: null,
  };
  await store.insert(record);
  return { token: minted.token, record };
}

/**
 * Resolves a presented bearer token to its principal, or throws the AuthError that says why not.
 * A token that is malformed and one whose accessor is unknown get the same answer, so the
 * response does not confirm that an accessor exists.
 */
export async function authenticateToken(
  store: TokenStore,
  clock: Clock,
  presented: string,
): Promise<{ principal: Principal; record: TokenRecord }> {
  const parsed = parseToken(presented);
  const record = parsed ? await store.get(parsed.accessor) : undefined;
  if (!parsed || !record || !secretMatches(parsed.secret, record.secretHash)) {
    throw new AuthError('auth.token_invalid', 'the token is not recognised');
  }
  if (record.revokedAt !== null) throw new AuthError('auth.token_revoked', 'the token has been revoked');
  if (record.expiresAt !== null && record.expiresAt <= clock.now().toISOString()) {
    throw new AuthError('auth.token_expired', 'the token has expired');
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
    record,
  };
}

/** Looks a token up within one tenant; a token of another tenant is reported as absent. */
export async function lookupToken(store: TokenStore, tenant: string, accessor: string): Promise<TokenRecord> {
  const record = await store.get(accessor);
  if (!record || record.tenant !== tenant) throw new TokenError('token.not_found', 'no token with that accessor in this tenant');
  return record;
}

export async function revokeToken(store: TokenStore, clock: Clock, tenant: string, accessor: string): Promise<void> {
  const ok = await store.revoke(tenant, accessor, clock.now().toISOString());
  if (!ok) throw new TokenError('token.not_found', 'no token with that accessor in this tenant');
}
