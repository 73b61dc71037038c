import { randomId } from '../../core/ids.js';

/**
 * A lease: the promise that a dynamic secret stops working at `expiresAt` unless renewed, and
 * never later than `maxExpiresAt` (Vault's lease model, "Lease, Renew, and Revoke",
 * https://developer.hashicorp.com/vault/docs/concepts/lease). The id names where the secret
 * came from, `<mount>/creds/<role>/<random>`, so `sys/leases/revoke-prefix` can revoke by mount
 * or role.
 */
export type LeaseId = string & { readonly __brand: 'LeaseId' };

export interface LeaseRecord {
  readonly tenant: string;
  readonly leaseId: LeaseId;
  /** The engine type that issued the secret and knows how to renew and revoke it (`database`). */
  readonly engine: string;
  readonly mount: string;
  readonly issuedAt: string;
  readonly lastRenewalAt: string | null;
  readonly expiresAt: string;
  readonly maxExpiresAt: string;
  readonly renewable: boolean;
  /** Seconds a renewal without an `increment` extends the lease by (the role's default TTL). */
  readonly defaultTtlSeconds: number;
  /** Barrier ciphertext of the engine's revocation data, sealed to this tenant and lease id. */
  readonly sealedData: string;
  /** When the expiry worker next acts: `expiresAt`, or the next retry of a failed revocation. */
  readonly revokeAfter: string;
  readonly revokeAttempts: number;
  /** Why the last revocation attempt failed (never a secret); null until one failed. */
  readonly lastError: string | null;
}

/** Vault's lease id shape: the path the secret was read from, then a random part. */
export function newLeaseId(mount: string, role: string): LeaseId {
  return `${mount}/creds/${role}/${randomId(18)}` as LeaseId;
}

/**
 * What `sys/leases/lookup` answers (https://developer.hashicorp.com/vault/api-docs/system/leases#read-lease):
 * `ttl` is the whole seconds left, never negative.
 */
export interface LeaseView {
  readonly id: string;
  readonly issue_time: string;
  readonly expire_time: string;
  readonly last_renewal: string | null;
  readonly renewable: boolean;
  readonly ttl: number;
}

export function leaseView(lease: LeaseRecord, now: Date): LeaseView {
  return {
    id: lease.leaseId,
    issue_time: lease.issuedAt,
    expire_time: lease.expiresAt,
    last_renewal: lease.lastRenewalAt,
    renewable: lease.renewable,
    ttl: remainingSeconds(lease.expiresAt, now),
  };
}

export function remainingSeconds(at: string, now: Date): number {
  return Math.max(0, Math.floor((Date.parse(at) - now.getTime()) / 1000));
}

/**
 * The expiry a renewal grants: `increment` seconds from now (the lease's default TTL when 0 or
 * absent), capped at the lease's max TTL as Vault caps it. `capped` tells the caller to warn.
 */
export function renewedExpiry(lease: LeaseRecord, now: Date, incrementSeconds: number | undefined): { expiresAt: Date; capped: boolean } {
  const increment = incrementSeconds && incrementSeconds > 0 ? incrementSeconds : lease.defaultTtlSeconds;
  const wanted = now.getTime() + increment * 1000;
  const max = Date.parse(lease.maxExpiresAt);
  return wanted > max ? { expiresAt: new Date(max), capped: true } : { expiresAt: new Date(wanted), capped: false };
}

/**
 * Exponential backoff for failed revocations: 10 s, 20 s, 40 s, … capped at one hour. The
 * worker retries for as long as it takes; every failure is an alert, never silently dropped.
 */
export function revokeRetryDelayMs(attempts: number): number {
  const base = 10_000;
  const cap = 3_600_000;
  return Math.min(cap, base * 2 ** Math.min(Math.max(attempts - 1, 0), 20));
}
