import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { LeaseBackend } from '../../src/secrets/leases/backend.js';
import { LeaseExpiry } from '../../src/secrets/leases/expiry.js';
import type { LeaseRecord } from '../../src/secrets/leases/lease.js';
import { LeaseManager, buildLease } from '../../src/secrets/leases/lease-manager.js';
import { SqlExpiryLock, SqlLeaseStore } from '../../src/store/lease-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';
import { leaseTransact, memoryBarrier } from './leases-fixtures.js';

/**
 * The lease manager (lookup, renew, revoke) and the expiry worker on SQLite and PostgreSQL, time
 * driven by a ManualClock and `tick()`: nothing sleeps for a TTL.
 */

const HOUR = 3600;

/** A backend that records what it was asked and fails while `failing` is set. */
class RecordingBackend implements LeaseBackend {
  revoked: string[] = [];
  renewed: Array<{ id: string; until: string; data: unknown }> = [];
  failing = false;
  async revoke(lease: LeaseRecord): Promise<void> {
    if (this.failing) throw new Error('connection refused');
    this.revoked.push(lease.leaseId);
  }
  async renew(lease: LeaseRecord, data: unknown, expiresAt: Date): Promise<void> {
    this.renewed.push({ id: lease.leaseId, until: expiresAt.toISOString(), data });
  }
}

describe.each(TEST_DATABASES)('leases on $name', (target) => {
  const database = freshDatabase(target);

  async function setup(options: { batchSize?: number; maxBatchesPerPass?: number; paused?: () => boolean } = {}) {
    // Each test starts from an empty lease table: leftovers sealed under another test's barrier
    // would (rightly) fail to revoke.
    await database().db.deleteFrom('secrets_leases').execute();
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const sealer = await memoryBarrier(clock);
    const store = new SqlLeaseStore(database().db);
    const manager = new LeaseManager({ sealer, clock, stores: { leases: store } });
    const backend = new RecordingBackend();
    manager.registerBackend('database', backend);
    const alerts: Array<{ id: string; attempts: number }> = [];
    const expiry = new LeaseExpiry({
      store,
      transact: leaseTransact(database()),
      lock: new SqlExpiryLock(database().db, database().dialect),
      manager,
      clock,
      auditRow: (e) => ({ tenant: e.tenant, recordedAt: e.time, payload: JSON.stringify(e) }),
      onAlert: (lease, _err, attempts) => alerts.push({ id: lease.leaseId, attempts }),
      ...options,
    });
    const issue = async (tenant: string, mount: string, ttl = HOUR, maxTtl = 4 * HOUR, renewable = true) => {
      const lease = buildLease({ tenant, engine: 'database', mount, role: 'ro', ttlSeconds: ttl, maxTtlSeconds: maxTtl, renewable, data: { username: 'u1' } }, sealer, clock);
      await store.insert(lease);
      return lease;
    };
    return { clock, sealer, store, manager, backend, expiry, alerts, issue };
  }

  async function auditFor(leaseId: string) {
    const rows = await database().db.selectFrom('audit_events').select('payload').execute();
    return rows.map((r) => JSON.parse(r.payload) as { outcome: string; details: { lease_id: string; attempts: number }; error_code: string | null }).filter((e) => e.details?.lease_id === leaseId);
  }

  it('looks up a lease with Vault fields and hides it from other tenants', async () => {
    const { clock, manager, issue, store } = await setup();
    const lease = await issue('acme', 'lk');
    expect(lease.leaseId).toMatch(/^lk\/creds\/ro\/[A-Za-z0-9_-]{24}$/);
    clock.advance(600_000);
    expect(await manager.lookup({ leases: store }, 'acme', lease.leaseId)).toEqual({
      id: lease.leaseId,
      issue_time: '2026-06-01T00:00:00.000Z',
      expire_time: '2026-06-01T01:00:00.000Z',
      last_renewal: null,
      renewable: true,
      ttl: 3000,
    });
    await expect(manager.lookup({ leases: store }, 'globex', lease.leaseId)).rejects.toMatchObject({ code: 'lease.not_found' });
    expect(await manager.revoke({ leases: store }, 'globex', lease.leaseId)).toBe(false);
    expect(await store.get('acme', lease.leaseId)).toBeDefined();
  });

  it('renews through the backend, capped at the max TTL, and refuses expired and non-renewable leases', async () => {
    const { clock, store, manager, backend, issue } = await setup();
    const lease = await issue('acme', 'rn');
    clock.advance(1800_000);
    const r = await manager.renew({ leases: store }, 'acme', lease.leaseId, 2 * HOUR);
    expect(r.lease.expiresAt).toBe('2026-06-01T02:30:00.000Z');
    expect(r.warning).toBeUndefined();
    expect(backend.renewed).toEqual([{ id: lease.leaseId, until: '2026-06-01T02:30:00.000Z', data: { username: 'u1' } }]);
    const capped = await manager.renew({ leases: store }, 'acme', lease.leaseId, 100 * HOUR);
    expect(capped.lease.expiresAt).toBe('2026-06-01T04:00:00.000Z');
    expect(capped.warning).toMatch(/capped/);
    // No increment: the lease's default TTL from now.
    expect((await manager.renew({ leases: store }, 'acme', lease.leaseId, undefined)).lease.expiresAt).toBe('2026-06-01T01:30:00.000Z');
    expect((await manager.lookup({ leases: store }, 'acme', lease.leaseId)).last_renewal).toBe('2026-06-01T00:30:00.000Z');

    await expect(manager.renew({ leases: store }, 'globex', lease.leaseId, 60)).rejects.toMatchObject({ code: 'lease.not_found' });
    const fixed = await issue('acme', 'rn', HOUR, HOUR, false);
    await expect(manager.renew({ leases: store }, 'acme', fixed.leaseId, 60)).rejects.toMatchObject({ code: 'lease.not_renewable' });
    clock.advance(2 * HOUR * 1000);
    await expect(manager.renew({ leases: store }, 'acme', lease.leaseId, 60)).rejects.toMatchObject({ code: 'lease.expired' });
  });

  it('revokes expired leases on tick, exactly at expiry, with an audit event each', async () => {
    const { clock, backend, expiry, issue, store } = await setup();
    const a = await issue('acme', 'ex', 60);
    const b = await issue('globex', 'ex', 120);
    clock.advance(59_999);
    await expiry.tick();
    expect(backend.revoked).not.toContain(a.leaseId);
    clock.advance(1);
    await expiry.tick();
    expect(backend.revoked).toContain(a.leaseId);
    expect(backend.revoked).not.toContain(b.leaseId);
    expect(await store.get('acme', a.leaseId)).toBeUndefined();
    expect(await store.get('globex', b.leaseId)).toBeDefined();
    expect(await auditFor(a.leaseId)).toMatchObject([{ outcome: 'success', error_code: null }]);
    clock.advance(60_000);
    await expiry.tick();
    expect(await store.get('globex', b.leaseId)).toBeUndefined();
  });

  it('retries a failed revocation with exponential backoff and alerts on every failure', async () => {
    const { clock, backend, expiry, issue, store, alerts } = await setup();
    const lease = await issue('acme', 'fl', 60);
    backend.failing = true;
    clock.advance(60_000);
    expect(await expiry.tick()).toMatchObject({ revoked: 0, failed: 1 });
    let kept = await store.get('acme', lease.leaseId);
    expect(kept).toMatchObject({ revokeAttempts: 1, lastError: 'connection refused', revokeAfter: '2026-06-01T00:01:10.000Z' });
    // Not retried before its backoff has passed.
    clock.advance(9_000);
    expect(await expiry.tick()).toMatchObject({ failed: 0 });
    clock.advance(1_000);
    expect(await expiry.tick()).toMatchObject({ failed: 1 });
    kept = await store.get('acme', lease.leaseId);
    expect(kept).toMatchObject({ revokeAttempts: 2, revokeAfter: '2026-06-01T00:01:30.000Z' });
    expect(alerts.filter((a) => a.id === lease.leaseId)).toEqual([
      { id: lease.leaseId, attempts: 1 },
      { id: lease.leaseId, attempts: 2 },
    ]);
    backend.failing = false;
    clock.advance(20_000);
    expect(await expiry.tick()).toMatchObject({ revoked: 1 });
    expect(await store.get('acme', lease.leaseId)).toBeUndefined();
    const events = await auditFor(lease.leaseId);
    expect(events.map((e) => [e.outcome, e.error_code, e.details.attempts])).toEqual([
      ['failed', 'lease.revoke_failed', 1],
      ['failed', 'lease.revoke_failed', 2],
      ['success', null, 2],
    ]);
  });

  it('an explicit revoke that fails says so and keeps the lease for the expiry worker', async () => {
    const { backend, manager, issue, store } = await setup();
    const lease = await issue('acme', 'xr');
    backend.failing = true;
    await expect(manager.revoke({ leases: store }, 'acme', lease.leaseId)).rejects.toMatchObject({ code: 'lease.revoke_failed' });
    expect(await store.get('acme', lease.leaseId)).toEqual(lease);
    backend.failing = false;
    expect(await manager.revoke({ leases: store }, 'acme', lease.leaseId)).toBe(true);
    expect(backend.revoked).toEqual([lease.leaseId]);
    expect(await store.get('acme', lease.leaseId)).toBeUndefined();
  });

  it('does nothing while the barrier is sealed, and catches up once unsealed', async () => {
    let sealed = true;
    const { clock, backend, expiry, issue } = await setup({ paused: () => sealed });
    const lease = await issue('acme', 'sl', 60);
    clock.advance(61_000);
    expect(await expiry.tick()).toEqual({ revoked: 0, failed: 0, stopped: 'paused' });
    sealed = false;
    expect(await expiry.tick()).toMatchObject({ revoked: 1 });
    expect(backend.revoked).toEqual([lease.leaseId]);
  });

  it('works through a backlog in bounded batches per pass', async () => {
    const { clock, backend, expiry, issue } = await setup({ batchSize: 20, maxBatchesPerPass: 3 });
    for (let i = 0; i < 100; i++) await issue('acme', 'bk', 60);
    clock.advance(61_000);
    expect(await expiry.tick()).toEqual({ revoked: 60, failed: 0, stopped: 'cap' });
    expect(await expiry.tick()).toEqual({ revoked: 40, failed: 0, stopped: 'done' });
    expect(new Set(backend.revoked.filter((id) => id.startsWith('bk/'))).size).toBe(100);
  });

  it.runIf(target.name === 'postgres')('lets one replica revoke at a time (advisory lock)', async () => {
    const { clock, sealer, expiry, issue, store } = await setup();
    await issue('acme', 'lock', 60);
    clock.advance(61_000);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inRevoke = new Promise<void>((r) => (entered = r));
    const slow: LeaseBackend = {
      revoke: () => {
        entered();
        return held;
      },
      renew: async () => undefined,
    };
    const replica = new LeaseManager({ sealer, clock, stores: { leases: store } });
    replica.registerBackend('database', slow);
    const other = new LeaseExpiry({
      store,
      transact: leaseTransact(database()),
      lock: new SqlExpiryLock(database().db, database().dialect),
      manager: replica,
      clock,
      auditRow: (e) => ({ tenant: e.tenant, recordedAt: e.time, payload: JSON.stringify(e) }),
    });
    const first = other.tick();
    await inRevoke; // the other replica holds the lock mid-pass
    expect(await expiry.tick()).toEqual({ revoked: 0, failed: 0, stopped: 'busy' });
    release();
    expect(await first).toMatchObject({ revoked: 1 });
  });
});
