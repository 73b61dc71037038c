import type { Clock } from '../../core/clock.js';
import { LeaseError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import type { LeaseBackend } from './backend.js';
import { type LeaseId, type LeaseRecord, type LeaseView, leaseView, newLeaseId, renewedExpiry, revokeRetryDelayMs } from './lease.js';
import type { LeaseStore } from './store.js';

/** The stores a lease operation runs against: the lease store, and whatever the backends need. */
export interface LeaseStores {
  readonly leases: LeaseStore;
}

export interface NewLease {
  readonly tenant: string;
  readonly engine: string;
  readonly mount: string;
  readonly role: string;
  readonly ttlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly renewable: boolean;
  /** What the engine needs later to renew and revoke the secret; sealed under the barrier. */
  readonly data: unknown;
}

export interface RenewResult {
  readonly lease: LeaseRecord;
  /** Set when the requested increment ran past the max TTL and was cut to it. */
  readonly warning: string | undefined;
}

/** Builds (does not store) the lease of a new secret, its engine data sealed to its id and tenant. */
export function buildLease(input: NewLease, sealer: Sealer, clock: Clock): LeaseRecord {
  const now = clock.now();
  const leaseId = newLeaseId(input.mount, input.role);
  const expiresAt = new Date(now.getTime() + input.ttlSeconds * 1000).toISOString();
  return {
    tenant: input.tenant,
    leaseId,
    engine: input.engine,
    mount: input.mount,
    issuedAt: now.toISOString(),
    lastRenewalAt: null,
    expiresAt,
    maxExpiresAt: new Date(now.getTime() + input.maxTtlSeconds * 1000).toISOString(),
    renewable: input.renewable,
    defaultTtlSeconds: input.ttlSeconds,
    sealedData: sealer.encrypt(input.tenant, leaseId, Buffer.from(JSON.stringify(input.data ?? null))),
    revokeAfter: expiresAt,
    revokeAttempts: 0,
    lastError: null,
  };
}

/**
 * Leases of dynamic secrets: issue, look up, renew, revoke (Vault's `sys/leases/*`,
 * https://developer.hashicorp.com/vault/api-docs/system/leases). Engines register a
 * {@link LeaseBackend}; the manager calls it for the external half of a renewal or revocation and
 * leaves the lease row to the caller's transaction, so the change commits with its audit event.
 */
export class LeaseManager<S extends LeaseStores = LeaseStores> {
  readonly #backends = new Map<string, LeaseBackend<S>>();
  readonly #sealer: Sealer;
  readonly #clock: Clock;
  readonly #stores: S;

  /** `stores` are the non-transactional ones: the expiry worker's (it records failed revocations there). */
  constructor(options: { sealer: Sealer; clock: Clock; stores: S }) {
    this.#sealer = options.sealer;
    this.#clock = options.clock;
    this.#stores = options.stores;
  }

  registerBackend(engine: string, backend: LeaseBackend<S>): void {
    if (this.#backends.has(engine)) throw new Error(`a lease backend for ${engine} is already registered`);
    this.#backends.set(engine, backend);
  }

  /** Throws `lease.not_found` when the tenant has no such lease (another tenant's included). */
  async lookup(stores: S, tenant: string, leaseId: string): Promise<LeaseView> {
    return leaseView(await this.#require(stores.leases, tenant, leaseId), this.#clock.now());
  }

  /**
   * Extends a lease by `increment` seconds from now, capped at its max TTL: first in the external
   * system (the backend), then in `stores` (the caller's transaction).
   */
  async renew(stores: S, tenant: string, leaseId: string, incrementSeconds: number | undefined): Promise<RenewResult> {
    const result = await this.renewExternally(stores, tenant, leaseId, incrementSeconds);
    await this.recordRenewal(stores, result);
    return result;
  }

  /**
   * The external half of {@link renew}, for a caller that runs it before its store transaction
   * (a remote `ALTER ROLE` must not hold the store's writer, src/store/group-commit.ts). Safe on
   * its own: should {@link recordRenewal} then fail, the external secret merely lives longer
   * than its lease, and the expiry worker still revokes it when the lease expires.
   */
  async renewExternally(stores: S, tenant: string, leaseId: string, incrementSeconds: number | undefined): Promise<RenewResult> {
    const lease = await this.#require(stores.leases, tenant, leaseId);
    const now = this.#clock.now();
    if (Date.parse(lease.expiresAt) <= now.getTime()) throw new LeaseError('lease.expired', 'lease has expired');
    if (!lease.renewable) throw new LeaseError('lease.not_renewable', 'lease is not renewable');
    const { expiresAt, capped } = renewedExpiry(lease, now, incrementSeconds);
    await this.#backend(lease).renew(lease, this.#open(lease), expiresAt, stores);
    const renewed: LeaseRecord = { ...lease, expiresAt: expiresAt.toISOString(), revokeAfter: expiresAt.toISOString(), lastRenewalAt: now.toISOString() };
    const warning = capped ? `TTL of the requested increment exceeded the lease's max TTL; it was capped to expire at ${renewed.expiresAt}` : undefined;
    return { lease: renewed, warning };
  }

  /** The store half of {@link renew}, in the caller's transaction; `lease.not_found` when the lease went meanwhile. */
  async recordRenewal(stores: S, result: RenewResult): Promise<void> {
    const { lease } = result;
    if (!(await stores.leases.renew(lease.tenant, lease.leaseId, lease.expiresAt, lease.lastRenewalAt!))) {
      throw new LeaseError('lease.not_found', 'invalid lease');
    }
  }

  /**
   * Revokes now (`sys/leases/revoke`): the secret in the external system, then the lease in
   * `stores` (the caller's transaction). Returns false when the tenant has no such lease
   * (revoking an unknown lease succeeds, as in Vault). When the backend fails this throws
   * `lease.revoke_failed` and changes nothing: the lease keeps its expiry, and the expiry worker
   * revokes it then, retrying with backoff.
   */
  async revoke(stores: S, tenant: string, leaseId: string): Promise<boolean> {
    const lease = await this.revokeExternally(stores, tenant, leaseId);
    if (!lease) return false;
    await this.forgetRevoked(stores, lease);
    return true;
  }

  /**
   * The external half of {@link revoke}, for a caller that runs it before its store transaction.
   * Returns the revoked lease, or undefined when the tenant has none of that id. Safe on its own:
   * should {@link forgetRevoked} then fail, the lease stays until it expires, and the expiry
   * worker's revocation of a secret already gone succeeds.
   */
  async revokeExternally(stores: S, tenant: string, leaseId: string): Promise<LeaseRecord | undefined> {
    const lease = await stores.leases.get(tenant, leaseId as LeaseId);
    if (!lease) return undefined;
    try {
      await this.#backend(lease).revoke(lease, this.#open(lease), stores);
    } catch (err) {
      throw new LeaseError('lease.revoke_failed', `failed to revoke lease ${lease.leaseId}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return lease;
  }

  /** The store half of {@link revoke}: deletes the revoked lease in the caller's transaction. */
  async forgetRevoked(stores: S, lease: LeaseRecord): Promise<void> {
    await stores.leases.delete(lease.tenant, lease.leaseId);
  }

  /**
   * The expiry worker's revocation of due leases: per engine through its batch revocation when it
   * has one, else one by one with at most `concurrency` in flight. Each failure is recorded with
   * its attempt count and retry time (exponential backoff) in the manager's own stores.
   */
  async revokeBatch(leases: readonly LeaseRecord[], concurrency: number): Promise<{ done: LeaseRecord[]; failures: Array<{ lease: LeaseRecord; err: unknown }> }> {
    const done: LeaseRecord[] = [];
    const failures: Array<{ lease: LeaseRecord; err: unknown }> = [];
    const byEngine = new Map<string, LeaseRecord[]>();
    for (const lease of leases) byEngine.set(lease.engine, [...(byEngine.get(lease.engine) ?? []), lease]);
    for (const group of byEngine.values()) {
      const opened: Array<{ lease: LeaseRecord; data: unknown }> = [];
      let backend: LeaseBackend<S>;
      try {
        backend = this.#backend(group[0]!);
      } catch (err) {
        for (const lease of group) failures.push({ lease, err });
        continue;
      }
      for (const lease of group) {
        try {
          opened.push({ lease, data: this.#open(lease) });
        } catch (err) {
          failures.push({ lease, err });
        }
      }
      if (backend.revokeMany) {
        let failed: Map<string, unknown>;
        try {
          failed = await backend.revokeMany(opened, this.#stores);
        } catch (err) {
          failed = new Map(opened.map((o) => [o.lease.leaseId, err]));
        }
        for (const { lease } of opened) {
          if (failed.has(lease.leaseId)) failures.push({ lease, err: failed.get(lease.leaseId) });
          else done.push(lease);
        }
        continue;
      }
      let next = 0;
      const worker = async () => {
        while (next < opened.length) {
          const { lease, data } = opened[next++]!;
          try {
            await backend.revoke(lease, data, this.#stores);
            done.push(lease);
          } catch (err) {
            failures.push({ lease, err });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, opened.length) }, worker));
    }
    const now = this.#clock.now().getTime();
    for (const { lease, err } of failures) {
      const attempts = lease.revokeAttempts + 1;
      await this.#stores.leases.recordFailure(lease.tenant, lease.leaseId, {
        attempts,
        retryAt: new Date(now + revokeRetryDelayMs(attempts)).toISOString(),
        error: (err instanceof Error ? err.message : String(err)).slice(0, 500),
      });
    }
    return { done, failures };
  }

  #open(lease: LeaseRecord): unknown {
    return JSON.parse(Buffer.from(this.#sealer.decrypt(lease.tenant, lease.leaseId, lease.sealedData)).toString('utf8'));
  }

  #backend(lease: LeaseRecord): LeaseBackend<S> {
    const backend = this.#backends.get(lease.engine);
    // Fail closed: a lease whose engine is not loaded is neither renewed nor silently dropped.
    if (!backend) throw new LeaseError('lease.revoke_failed', `no engine ${lease.engine} is loaded to handle lease ${lease.leaseId}`);
    return backend;
  }

  async #require(store: LeaseStore, tenant: string, leaseId: string): Promise<LeaseRecord> {
    const lease = await store.get(tenant, leaseId as LeaseId);
    if (!lease) throw new LeaseError('lease.not_found', 'invalid lease');
    return lease;
  }
}
