import { type Kysely, type Selectable, sql } from 'kysely';
import type { LeaseId, LeaseRecord } from '../secrets/leases/lease.js';
import type { ExpiryLock, LeaseStore } from '../secrets/leases/store.js';
import type { Dialect } from './database.js';
import type { Database, SecretsLeasesTable } from './schema.js';

/**
 * LeaseStore over `secrets_leases`. Prefix matches use `substr(...) = prefix` rather than LIKE:
 * SQLite's LIKE ignores ASCII case, and a lease id may contain `%` and `_`. SQL's substr counts
 * characters (code points), so the prefix is measured in code points, not UTF-16 units.
 */
export class SqlLeaseStore implements LeaseStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(lease: LeaseRecord): Promise<void> {
    await this.db.insertInto('secrets_leases').values(toRow(lease)).execute();
  }

  async get(tenant: string, leaseId: LeaseId): Promise<LeaseRecord | undefined> {
    const row = await this.db.selectFrom('secrets_leases').selectAll().where('tenant', '=', tenant).where('lease_id', '=', leaseId).executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  async listByPrefix(tenant: string, prefix: string, page: { after?: string | undefined; limit: number }): Promise<LeaseId[]> {
    let q = this.db
      .selectFrom('secrets_leases')
      .select('lease_id')
      .where('tenant', '=', tenant)
      .where(sql<string>`substr(lease_id, 1, ${[...prefix].length})`, '=', prefix);
    if (page.after !== undefined) q = q.where('lease_id', '>', page.after);
    const rows = await q.orderBy('lease_id').limit(page.limit).execute();
    return rows.map((r) => r.lease_id as LeaseId);
  }

  async renew(tenant: string, leaseId: LeaseId, expiresAt: string, renewedAt: string): Promise<boolean> {
    const r = await this.db
      .updateTable('secrets_leases')
      .set({ expires_at: expiresAt, revoke_after: expiresAt, last_renewal_at: renewedAt })
      .where('tenant', '=', tenant)
      .where('lease_id', '=', leaseId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async expirePrefix(tenant: string, prefix: string, at: string): Promise<number> {
    const r = await this.db
      .updateTable('secrets_leases')
      .set({ expires_at: at, revoke_after: at })
      .where('tenant', '=', tenant)
      .where(sql<string>`substr(lease_id, 1, ${[...prefix].length})`, '=', prefix)
      .where('revoke_after', '>', at)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async expire(tenant: string, leaseId: LeaseId, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('secrets_leases')
      .set({ expires_at: at, revoke_after: at })
      .where('tenant', '=', tenant)
      .where('lease_id', '=', leaseId)
      .where('revoke_after', '>', at)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async delete(tenant: string, leaseId: LeaseId): Promise<boolean> {
    const r = await this.db.deleteFrom('secrets_leases').where('tenant', '=', tenant).where('lease_id', '=', leaseId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async due(now: string, limit: number): Promise<LeaseRecord[]> {
    const rows = await this.db.selectFrom('secrets_leases').selectAll().where('revoke_after', '<=', now).orderBy('revoke_after').limit(limit).execute();
    return rows.map(fromRow);
  }

  async recordFailure(tenant: string, leaseId: LeaseId, failure: { attempts: number; retryAt: string; error: string }): Promise<void> {
    await this.db
      .updateTable('secrets_leases')
      .set({ revoke_attempts: failure.attempts, revoke_after: failure.retryAt, last_error: failure.error })
      .where('tenant', '=', tenant)
      .where('lease_id', '=', leaseId)
      .execute();
  }
}

/**
 * The expiry worker's singleton lock. PostgreSQL: a session-level advisory lock, tried without
 * waiting, held on one pooled connection for the whole pass (a pass makes external calls, so a
 * transaction-scoped lock would hold a transaction open across them). SQLite: one process.
 */
export class SqlExpiryLock implements ExpiryLock {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly name = 'rampart.secrets.lease_expiry',
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T | 'busy'> {
    if (this.dialect !== 'postgres') return work();
    return this.db.connection().execute(async (conn) => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(hashtext(${this.name})) as locked`.execute(conn);
      if (!rows[0]?.locked) return 'busy' as const;
      try {
        return await work();
      } finally {
        await sql`select pg_advisory_unlock(hashtext(${this.name}))`.execute(conn);
      }
    });
  }
}

function toRow(l: LeaseRecord): SecretsLeasesTable {
  return {
    tenant: l.tenant,
    lease_id: l.leaseId,
    engine: l.engine,
    mount: l.mount,
    issued_at: l.issuedAt,
    last_renewal_at: l.lastRenewalAt,
    expires_at: l.expiresAt,
    max_expires_at: l.maxExpiresAt,
    renewable: l.renewable ? 1 : 0,
    default_ttl: l.defaultTtlSeconds,
    sealed_data: l.sealedData,
    revoke_after: l.revokeAfter,
    revoke_attempts: l.revokeAttempts,
    last_error: l.lastError,
  };
}

function fromRow(r: Selectable<SecretsLeasesTable>): LeaseRecord {
  return {
    tenant: r.tenant,
    leaseId: r.lease_id as LeaseId,
    engine: r.engine,
    mount: r.mount,
    issuedAt: r.issued_at,
    lastRenewalAt: r.last_renewal_at,
    expiresAt: r.expires_at,
    maxExpiresAt: r.max_expires_at,
    renewable: Number(r.renewable) === 1,
    defaultTtlSeconds: Number(r.default_ttl),
    sealedData: r.sealed_data,
    revokeAfter: r.revoke_after,
    revokeAttempts: Number(r.revoke_attempts),
    lastError: r.last_error,
  };
}
