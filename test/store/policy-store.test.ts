import { beforeAll, describe, expect, it } from 'vitest';
import type { PolicyVersionRecord, PolicyVersionStatus } from '../../src/authz/store.js';
import { ManualClock } from '../../src/core/clock.js';
import { SqlPolicyStore } from '../../src/store/policy-store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suite for the PolicyStore port (src/authz/store.ts), run against every store in
 * TEST_DATABASES, each describe block on its own fresh database.
 */


const clock = new ManualClock();

function version(
  tenant: string,
  store: string,
  v: number,
  status: PolicyVersionStatus,
  extra: Partial<PolicyVersionRecord> = {},
): PolicyVersionRecord {
  clock.advance(1000);
  return {
    tenant,
    store,
    version: v,
    hash: `${tenant}/${store}/${v}`.padEnd(64, '0'),
    policies: { 'main.cedar': `permit(principal, action, resource) when { context.v == ${v} };` },
    schema: null,
    status,
    author: 'User::alice',
    message: `version ${v}`,
    createdAt: clock.now().toISOString(),
    ...extra,
  };
}

describe.each(TEST_DATABASES)('PolicyStore on $name', (target) => {
  const database = freshDatabase(target);
  const policies = () => new SqlPolicyStore(database().db);

  /** Every version of one tenant's store with its status, straight from the table. */
  async function statuses(tenant: string, store: string): Promise<Array<[number, string]>> {
    const rows = await database()
      .db.selectFrom('policy_versions')
      .select(['version', 'status'])
      .where('tenant', '=', tenant)
      .where('store', '=', store)
      .orderBy('version')
      .execute();
    return rows.map((r) => [Number(r.version), r.status]);
  }

  beforeAll(async () => {
    const tenants = new SqlTenantStore(database().db);
    for (const name of ['acme', 'globex']) {
      expect(await tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: clock.now().toISOString() })).toBe(true);
    }
  });

  const v1 = version('acme', 'rampart', 1, 'active');
  const v2 = version('acme', 'rampart', 2, 'active', {
    policies: { 'a.cedar': 'permit(principal, action, resource);', 'b.cedar': 'forbid(principal, action, resource) unless { true };' },
    schema: '{"Rampart": {"entityTypes": {}, "actions": {}}}',
    message: 'two files and a schema, ünïcode',
  });
  const v3 = version('acme', 'rampart', 3, 'rejected', { message: 'failed validation' });

  it('has no active version and latest version 0 initially', async () => {
    expect(await policies().active('acme', 'rampart')).toBeUndefined();
    expect(await policies().latestVersion('acme', 'rampart')).toBe(0);
  });

  it('makes an inserted active version the active one, with every field intact', async () => {
    await policies().insert(v1);
    expect(await policies().active('acme', 'rampart')).toEqual(v1);
    expect(await policies().latestVersion('acme', 'rampart')).toBe(1);
    expect(await statuses('acme', 'rampart')).toEqual([[1, 'active']]);
  });

  it('supersedes the previous active version when a new one becomes active', async () => {
    await policies().insert(v2);
    expect(await statuses('acme', 'rampart')).toEqual([
      [1, 'superseded'],
      [2, 'active'],
    ]);
    expect(await policies().active('acme', 'rampart')).toEqual(v2);
    expect(await policies().latestVersion('acme', 'rampart')).toBe(2);
  });

  it('never activates a rejected version, but counts it for the latest version', async () => {
    await policies().insert(v3);
    expect(await statuses('acme', 'rampart')).toEqual([
      [1, 'superseded'],
      [2, 'active'],
      [3, 'rejected'],
    ]);
    expect(await policies().active('acme', 'rampart')).toEqual(v2);
    expect(await policies().latestVersion('acme', 'rampart')).toBe(3);
  });

  it('refuses a duplicate version number and leaves the active version in place', async () => {
    const clash = version('acme', 'rampart', 2, 'active', { message: 'clashes with version 2' });
    await expect(policies().insert(clash)).rejects.toThrow();
    expect(await policies().active('acme', 'rampart')).toEqual(v2);
    expect(await statuses('acme', 'rampart')).toEqual([
      [1, 'superseded'],
      [2, 'active'],
      [3, 'rejected'],
    ]);
  });

  it('refuses a version for a tenant that does not exist', async () => {
    await expect(policies().insert(version('nobody', 'rampart', 1, 'active'))).rejects.toThrow();
    expect(await policies().active('nobody', 'rampart')).toBeUndefined();
  });

  it('keeps tenants apart: another tenant sees nothing, and its activations leave acme alone', async () => {
    expect(await policies().active('globex', 'rampart')).toBeUndefined();
    expect(await policies().latestVersion('globex', 'rampart')).toBe(0);

    const g1 = version('globex', 'rampart', 1, 'active');
    const g2 = version('globex', 'rampart', 2, 'active');
    await policies().insert(g1);
    await policies().insert(g2);
    expect(await policies().active('globex', 'rampart')).toEqual(g2);
    expect(await policies().latestVersion('globex', 'rampart')).toBe(2);
    expect(await statuses('globex', 'rampart')).toEqual([
      [1, 'superseded'],
      [2, 'active'],
    ]);

    expect(await policies().active('acme', 'rampart')).toEqual(v2);
    expect(await policies().latestVersion('acme', 'rampart')).toBe(3);
    expect(await statuses('acme', 'rampart')).toEqual([
      [1, 'superseded'],
      [2, 'active'],
      [3, 'rejected'],
    ]);
  });

  it('keeps policy stores of one tenant apart', async () => {
    expect(await policies().active('acme', 'billing')).toBeUndefined();
    expect(await policies().latestVersion('acme', 'billing')).toBe(0);

    const b1 = version('acme', 'billing', 1, 'active');
    await policies().insert(b1);
    expect(await policies().active('acme', 'billing')).toEqual(b1);
    expect(await policies().latestVersion('acme', 'billing')).toBe(1);

    // The rampart store's active version was not superseded by billing's activation.
    expect(await policies().active('acme', 'rampart')).toEqual(v2);
    expect(await statuses('acme', 'rampart')).toEqual([
      [1, 'superseded'],
      [2, 'active'],
      [3, 'rejected'],
    ]);

    // Store names match exactly.
    expect(await policies().active('acme', 'Billing')).toBeUndefined();
    expect(await policies().active('acme', 'billing ')).toBeUndefined();
  });

  it('has exactly one active version per tenant and store at the end', async () => {
    const rows = await database()
      .db.selectFrom('policy_versions')
      .select(['tenant', 'store', 'version'])
      .where('status', '=', 'active')
      .orderBy('tenant')
      .orderBy('store')
      .execute();
    expect(rows.map((r) => [r.tenant, r.store, Number(r.version)])).toEqual([
      ['acme', 'billing', 1],
      ['acme', 'rampart', 2],
      ['globex', 'rampart', 2],
    ]);
  });
});
