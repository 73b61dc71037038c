import type { Clock } from '../../core/clock.js';
import type { TokenRecord } from '../../identity/store.js';

/** Seconds until the token expires; 0 for a token without expiry (Vault's convention). */
export function ttlOf(record: TokenRecord, clock: Clock): number {
  return record.expiresAt === null ? 0 : Math.max(0, Math.floor((Date.parse(record.expiresAt) - clock.now().getTime()) / 1000));
}

/** Vault's `auth` block of token creation, renewal and every login (api-docs, "Auth response"). */
export function authBlock(record: TokenRecord, token: string | undefined, clock: Clock, metadata: Record<string, string> | null = null): Record<string, unknown> {
  return {
    ...(token === undefined ? {} : { client_token: token }),
    accessor: record.accessor,
    policies: record.policies,
    token_policies: record.policies,
    metadata,
    lease_duration: ttlOf(record, clock),
    renewable: record.renewable === true,
    entity_id: '',
    token_type: 'service',
    orphan: record.parent === undefined,
    num_uses: record.usesLeft ?? 0,
  };
}
