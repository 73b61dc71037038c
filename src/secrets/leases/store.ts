import type { LeaseId, LeaseRecord } from './lease.js';

/**
 * The storage port of the lease manager. Every call but the expiry worker's is scoped by tenant:
 * a tenant never reads, renews or revokes another tenant's lease.
 */
export interface LeaseStore {
  insert(lease: LeaseRecord): Promise<void>;
  /** Returns undefined when the tenant has no lease with that id. */
  get(tenant: string, leaseId: LeaseId): Promise<LeaseRecord | undefined>;
  /**
   * Lease ids of the tenant starting with `prefix`, in id order, after `after` (exclusive), at
   * most `limit`: callers page through a large prefix.
   */
  listByPrefix(tenant: string, prefix: string, page: { after?: string | undefined; limit: number }): Promise<LeaseId[]>;
  /** Moves a renewed lease's expiry (and its revocation time with it); false when it is gone. */
  renew(tenant: string, leaseId: LeaseId, expiresAt: string, renewedAt: string): Promise<boolean>;
  /**
   * Makes the tenant's leases under `prefix` due now (expiry and revocation time `at`, unless
   * already earlier); returns how many. The expiry worker then revokes them.
   */
  expirePrefix(tenant: string, prefix: string, at: string): Promise<number>;
  /** Makes one lease due now (`sys/leases/revoke` with `sync: false`); false when there is none. */
  expire(tenant: string, leaseId: LeaseId, at: string): Promise<boolean>;
  /** Removes a revoked lease; false when it was already gone. */
  delete(tenant: string, leaseId: LeaseId): Promise<boolean>;
  /** Leases of every tenant whose revocation time is at or before `now`, earliest first. */
  due(now: string, limit: number): Promise<LeaseRecord[]>;
  /** Records a failed revocation attempt and when to try again. */
  recordFailure(tenant: string, leaseId: LeaseId, failure: { attempts: number; retryAt: string; error: string }): Promise<void>;
}

/** Audit rows written in the same transaction as the lease changes they record. */
export interface LeaseAuditRows {
  insert(rows: readonly { tenant: string; recordedAt: string; payload: string }[]): Promise<void>;
}

/** Runs `work` in one store transaction (the server's `Transact`, narrowed to what leases use). */
export type LeaseTransact = <T>(work: (stores: { readonly leases: LeaseStore; readonly audit: LeaseAuditRows }) => Promise<T>) => Promise<T>;

/**
 * Singleton guard for the expiry worker: of several replicas sharing a PostgreSQL database, one
 * runs a pass at a time (an advisory lock, not waited for); SQLite has one process.
 */
export interface ExpiryLock {
  /** Runs `work` holding the lock; answers `busy` without running it when another holder has it. */
  run<T>(work: () => Promise<T>): Promise<T | 'busy'>;
}
