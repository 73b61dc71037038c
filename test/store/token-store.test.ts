import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { TokenRecord } from '../../src/identity/store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { SqlTokenStore } from '../../src/store/token-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suite for the TokenStore port (src/identity/store.ts), run against every store in
 * TEST_DATABASES, each describe block on its own fresh database.
 */


const HOUR_MS = 3_600_000;

describe.each(TEST_DATABASES)('TokenStore on $name', (target) => {
  const database = freshDatabase(target);
  const clock = new ManualClock();
  const tokens = () => new SqlTokenStore(database().db);

  beforeAll(async () => {
    const tenants = new SqlTenantStore(database().db);
    for (const name of ['acme', 'globex']) {
      expect(await tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: clock.now().toISOString() })).toBe(true);
    }
  });

  const full: TokenRecord = {
    accessor: 'acc-full',
    tenant: 'acme',
    secretHash: 'a'.repeat(64),
    policies: ['tenant-admin', 'audit-reader', 'ünïcode policy'],
    displayName: 'CI deploy token',
    createdBy: 'User::alice',
    createdAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-01-02T00:00:00.000Z',
    revokedAt: null,
  };
  const sparse: TokenRecord = {
    accessor: 'acc-sparse',
    tenant: 'acme',
    secretHash: 'b'.repeat(64),
    policies: [],
    displayName: '',
    createdBy: null,
    createdAt: '2026-01-01T00:00:01.000Z',
    expiresAt: null,
    revokedAt: null,
  };
  const bornRevoked: TokenRecord = {
    ...sparse,
    accessor: 'acc-born-revoked',
    tenant: 'globex',
    policies: ['reader'],
    revokedAt: '2026-01-01T00:00:02.000Z',
  };

  it('round-trips every field, including arrays, empty values and nulls', async () => {
    for (const t of [full, sparse, bornRevoked]) await tokens().insert(t);
    expect(await tokens().get('acc-full')).toEqual(full);
    expect(await tokens().get('acc-sparse')).toEqual(sparse);
    expect(await tokens().get('acc-born-revoked')).toEqual(bornRevoked);
    // Nulls stay null (not undefined, not the string "null").
    const got = await tokens().get('acc-sparse');
    expect(got?.createdBy).toBeNull();
    expect(got?.expiresAt).toBeNull();
    expect(got?.revokedAt).toBeNull();
  });

  it('stores only the hash it is given, under the given accessor', async () => {
    const row = await database().db.selectFrom('tokens').selectAll().where('accessor', '=', 'acc-full').executeTakeFirstOrThrow();
    expect(row.secret_hash).toBe('a'.repeat(64));
    expect(row.tenant).toBe('acme');
    expect(JSON.parse(row.policies)).toEqual(full.policies);
  });

  it('answers undefined for an unknown accessor', async () => {
    expect(await tokens().get('acc-missing')).toBeUndefined();
    expect(await tokens().get('')).toBeUndefined();
    expect(await tokens().get('ACC-FULL')).toBeUndefined();
  });

  it('refuses a second token with an existing accessor and keeps the first', async () => {
    const hijack: TokenRecord = { ...full, tenant: 'globex', secretHash: 'c'.repeat(64), policies: ['tenant-admin'] };
    await expect(tokens().insert(hijack)).rejects.toThrow();
    expect(await tokens().get('acc-full')).toEqual(full);
  });

  it('refuses a token for a tenant that does not exist', async () => {
    await expect(tokens().insert({ ...sparse, accessor: 'acc-orphan', tenant: 'nobody' })).rejects.toThrow();
    expect(await tokens().get('acc-orphan')).toBeUndefined();
  });

  it('does not revoke a token through another tenant (cross-tenant revocation)', async () => {
    clock.advance(HOUR_MS);
    // globex exists, but the token belongs to acme.
    expect(await tokens().revoke('globex', 'acc-full', clock.now().toISOString())).toBe(false);
    expect(await tokens().revoke('nobody', 'acc-full', clock.now().toISOString())).toBe(false);
    expect(await tokens().get('acc-full')).toEqual(full);
    expect((await tokens().get('acc-full'))?.revokedAt).toBeNull();
  });

  it('answers false when revoking an unknown accessor', async () => {
    expect(await tokens().revoke('acme', 'acc-missing', clock.now().toISOString())).toBe(false);
    expect(await tokens().get('acc-missing')).toBeUndefined();
  });

  it('revokes in the right tenant; revoking again keeps the first revocation time', async () => {
    clock.advance(HOUR_MS);
    const first = clock.now().toISOString();
    expect(await tokens().revoke('acme', 'acc-full', first)).toBe(true);
    expect(await tokens().get('acc-full')).toEqual({ ...full, revokedAt: first });

    clock.advance(HOUR_MS);
    const second = clock.now().toISOString();
    expect(second).not.toBe(first);
    expect(await tokens().revoke('acme', 'acc-full', second)).toBe(true);
    expect((await tokens().get('acc-full'))?.revokedAt).toBe(first);

    // A token inserted already revoked keeps its original time too.
    expect(await tokens().revoke('globex', 'acc-born-revoked', second)).toBe(true);
    expect((await tokens().get('acc-born-revoked'))?.revokedAt).toBe(bornRevoked.revokedAt);
  });

  it('revokes only the named token', async () => {
    expect(await tokens().get('acc-sparse')).toEqual(sparse);
    const rows = await database().db.selectFrom('tokens').select(['accessor', 'revoked_at']).orderBy('accessor').execute();
    expect(rows).toEqual([
      { accessor: 'acc-born-revoked', revoked_at: bornRevoked.revokedAt },
      { accessor: 'acc-full', revoked_at: '2026-01-01T02:00:00.000Z' },
      { accessor: 'acc-sparse', revoked_at: null },
    ]);
  });
});
