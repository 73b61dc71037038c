import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { LeaseId, LeaseRecord } from '../../src/secrets/leases/lease.js';
import { SqlLeaseStore } from '../../src/store/lease-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/** Contract suite for the LeaseStore port (src/secrets/leases/store.ts) on SQLite and PostgreSQL. */

function lease(tenant: string, leaseId: string, expiresAt: string, extra: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    tenant,
    leaseId: leaseId as LeaseId,
    engine: 'database',
    mount: leaseId.split('/')[0]!,
    issuedAt: '2026-01-01T00:00:00.000Z',
    lastRenewalAt: null,
    expiresAt,
    maxExpiresAt: '2026-01-02T00:00:00.000Z',
    renewable: true,
    defaultTtlSeconds: 3600,
    sealedData: 'rb1:1:sealed',
    revokeAfter: expiresAt,
    revokeAttempts: 0,
    lastError: null,
    ...extra,
  };
}

describe.each(TEST_DATABASES)('LeaseStore on $name', (target) => {
  const database = freshDatabase(target);
  const store = () => new SqlLeaseStore(database().db);
  const clock = new ManualClock();

  it('round-trips every field and scopes reads by tenant', async () => {
    const l = lease('acme', 'db/creds/ro/a1', '2026-01-01T01:00:00.000Z', { renewable: false, lastRenewalAt: '2026-01-01T00:30:00.000Z', revokeAttempts: 2, lastError: 'down' });
    await store().insert(l);
    expect(await store().get('acme', l.leaseId)).toEqual(l);
    expect(await store().get('globex', l.leaseId)).toBeUndefined();
    expect(await store().delete('globex', l.leaseId)).toBe(false);
    expect(await store().renew('globex', l.leaseId, '2026-01-01T05:00:00.000Z', clock.now().toISOString())).toBe(false);
    expect((await store().get('acme', l.leaseId))?.expiresAt).toBe('2026-01-01T01:00:00.000Z');
  });

  it('lists by prefix exactly (case, % and _ are literal) and pages', async () => {
    for (const id of ['p/creds/Role/1', 'p/creds/role/1', 'p/creds/role/2', 'p/creds/role/3', 'p/creds/ro_e/1', 'p/creds/ro%/1']) {
      await store().insert(lease('acme', id, '2026-01-01T01:00:00.000Z'));
    }
    await store().insert(lease('globex', 'p/creds/role/9', '2026-01-01T01:00:00.000Z'));
    expect(await store().listByPrefix('acme', 'p/creds/role/', { limit: 10 })).toEqual(['p/creds/role/1', 'p/creds/role/2', 'p/creds/role/3']);
    expect(await store().listByPrefix('acme', 'p/creds/ro_', { limit: 10 })).toEqual(['p/creds/ro_e/1']);
    expect(await store().listByPrefix('acme', 'p/creds/ro%', { limit: 10 })).toEqual(['p/creds/ro%/1']);
    const first = await store().listByPrefix('acme', 'p/', { limit: 2 });
    const rest = await store().listByPrefix('acme', 'p/', { after: first.at(-1), limit: 10 });
    expect([...first, ...rest]).toHaveLength(6);
    expect(new Set([...first, ...rest]).size).toBe(6);
  });

  it('matches a prefix with characters outside the BMP by code points, not UTF-16 units', async () => {
    for (const id of ['e/creds/😀/1', 'e/creds/😀x/1', 'e/creds/x/1']) await store().insert(lease('acme', id, '2026-01-01T01:00:00.000Z'));
    expect(await store().listByPrefix('acme', 'e/creds/😀/', { limit: 10 })).toEqual(['e/creds/😀/1']);
    expect(await store().listByPrefix('acme', 'e/creds/😀', { limit: 10 })).toEqual(['e/creds/😀/1', 'e/creds/😀x/1']);
    expect(await store().expirePrefix('acme', 'e/creds/😀/', '2026-01-01T00:20:00.000Z')).toBe(1);
  });

  it('renews, expires a prefix of one tenant only, and lists due leases across tenants in time order', async () => {
    await store().insert(lease('acme', 'q/creds/a/1', '2026-01-01T03:00:00.000Z'));
    await store().insert(lease('acme', 'q/creds/a/2', '2026-01-01T04:00:00.000Z'));
    await store().insert(lease('globex', 'q/creds/a/3', '2026-01-01T02:00:00.000Z'));
    expect(await store().renew('acme', 'q/creds/a/1' as LeaseId, '2026-01-01T06:00:00.000Z', '2026-01-01T00:10:00.000Z')).toBe(true);
    const renewed = await store().get('acme', 'q/creds/a/1' as LeaseId);
    expect(renewed).toMatchObject({ expiresAt: '2026-01-01T06:00:00.000Z', revokeAfter: '2026-01-01T06:00:00.000Z', lastRenewalAt: '2026-01-01T00:10:00.000Z' });

    expect(await store().expirePrefix('acme', 'q/creds/a/', '2026-01-01T00:20:00.000Z')).toBe(2);
    expect((await store().get('globex', 'q/creds/a/3' as LeaseId))?.expiresAt).toBe('2026-01-01T02:00:00.000Z');

    const due = await store().due('2026-01-01T02:00:00.000Z', 100);
    const ours = due.filter((l) => l.leaseId.startsWith('q/'));
    // a/1 and a/2 were made due at 00:20, globex's at 02:00: earliest first, across tenants.
    expect(ours.slice(0, 2).map((l) => l.leaseId).sort()).toEqual(['q/creds/a/1', 'q/creds/a/2']);
    expect(ours.slice(2).map((l) => [l.tenant, l.leaseId])).toEqual([['globex', 'q/creds/a/3']]);
    expect(await store().due('2026-01-01T00:00:00.000Z', 100)).toEqual([]);
  });

  it('records a failed revocation and moves its retry time', async () => {
    const l = lease('acme', 'r/creds/a/1', '2026-01-01T01:00:00.000Z');
    await store().insert(l);
    await store().recordFailure('acme', l.leaseId, { attempts: 1, retryAt: '2026-01-01T01:00:10.000Z', error: 'connection refused' });
    expect(await store().get('acme', l.leaseId)).toMatchObject({ revokeAttempts: 1, revokeAfter: '2026-01-01T01:00:10.000Z', lastError: 'connection refused', expiresAt: '2026-01-01T01:00:00.000Z' });
    // One lease only: an id that is a prefix of others matches none of them.
    await store().insert(lease('acme', 'r/creds/a/12', '2026-01-01T01:00:00.000Z'));
    expect(await store().expire('acme', 'r/creds/a/1' as LeaseId, '2026-01-01T00:00:00.000Z')).toBe(true);
    expect(await store().get('acme', 'r/creds/a/12' as LeaseId)).toMatchObject({ revokeAfter: '2026-01-01T01:00:00.000Z' });
    expect(await store().expire('globex', 'r/creds/a/12' as LeaseId, '2026-01-01T00:00:00.000Z')).toBe(false);
    expect(await store().expire('acme', 'r/creds/a/none' as LeaseId, '2026-01-01T00:00:00.000Z')).toBe(false);
    expect(await store().delete('acme', l.leaseId)).toBe(true);
    expect(await store().delete('acme', l.leaseId)).toBe(false);
  });
});
