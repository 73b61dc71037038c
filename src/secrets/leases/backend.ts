import type { LeaseRecord } from './lease.js';

/**
 * What a secrets engine implements so that its leases can be renewed and revoked. `data` is what
 * the engine sealed into the lease when it issued the secret (for the database engine: the
 * connection name, the username and the revocation statements). `stores` are the caller's: bound
 * to the request's transaction for `sys/leases/*`, so a backend never opens a second connection
 * to the store while the transaction holds it (on SQLite that would wait on itself).
 */
export interface LeaseBackend<S = unknown> {
  /**
   * Undoes the secret in the external system. Must be idempotent: revoking a secret that is
   * already gone succeeds, because a revocation may be retried after a crash between the external
   * change and the lease's removal.
   */
  revoke(lease: LeaseRecord, data: unknown, stores: S): Promise<void>;
  /**
   * Optional: revokes many leases at once (the expiry worker's batches), e.g. one database
   * transaction for every user of one connection. Resolves with the leases that failed and why;
   * the others are revoked.
   */
  revokeMany?(items: ReadonlyArray<{ readonly lease: LeaseRecord; readonly data: unknown }>, stores: S): Promise<Map<string, unknown>>;
  /** Extends the secret in the external system to `expiresAt` before the lease records it. */
  renew(lease: LeaseRecord, data: unknown, expiresAt: Date, stores: S): Promise<void>;
}
