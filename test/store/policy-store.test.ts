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
  const policies = () => new SqlPolicyStore(database().db, database().dialect);

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
  it('gets any version by number with its tests and reasons, and lists versions newest first in pages', async () => {
    const tested = version('globex', 'apps', 1, 'active', { tests: { 'tests.yaml': '- name: x\n' } });
    const refused = version('globex', 'apps', 2, 'rejected', { reasons: ['main.cedar:1:5: unexpected token'] });
    await policies().insert(tested);
    await policies().insert(refused);
    expect(await policies().get('globex', 'apps', 1)).toEqual(tested);
    expect(await policies().get('globex', 'apps', 2)).toEqual(refused);
    expect(await policies().get('globex', 'apps', 3)).toBeUndefined();
    expect(await policies().get('acme', 'apps', 1)).toBeUndefined();

    const all = await policies().versions('acme', 'rampart', { limit: 10, before: undefined });
    expect(all.map((v) => [v.version, v.status])).toEqual([
      [3, 'rejected'],
      [2, 'active'],
      [1, 'superseded'],
    ]);
    expect(all[0]).toEqual({ ...v3, policies: undefined, schema: undefined, tests: undefined, reasons: undefined });
    expect(all[0]).not.toHaveProperty('policies');
    const first = await policies().versions('acme', 'rampart', { limit: 2, before: undefined });
    const rest = await policies().versions('acme', 'rampart', { limit: 2, before: first.at(-1)!.version });
    expect([...first, ...rest].map((v) => v.version)).toEqual([3, 2, 1]);
    expect((await policies().versions('globex', 'apps', { limit: 5, before: undefined }))[0]).toMatchObject({ reasons: ['main.cedar:1:5: unexpected token'] });
  });

  it("lists a tenant's stores by name with their active and latest versions, in pages", async () => {
    await policies().insert(version('globex', 'zeta', 1, 'rejected'));
    const stores = await policies().stores('globex', { limit: 10, after: undefined });
    expect(stores).toEqual([
      { store: 'apps', activeVersion: 1, latestVersion: 2 },
      { store: 'rampart', activeVersion: 2, latestVersion: 2 },
      { store: 'zeta', activeVersion: undefined, latestVersion: 1 },
    ]);
    const page1 = await policies().stores('globex', { limit: 2, after: undefined });
    const page2 = await policies().stores('globex', { limit: 2, after: page1.at(-1)!.store });
    expect([...page1, ...page2].map((s) => s.store)).toEqual(['apps', 'rampart', 'zeta']);
    expect(await policies().stores('nobody', { limit: 10, after: undefined })).toEqual([]);
  });
  it('hands concurrent transactions consecutive next versions, one active at the end', async () => {
    await policies().insert(version('acme', 'seq', 1, 'active'));
    expect(await policies().nextVersion('acme', 'seq')).toBe(2);
    expect(await policies().nextVersion('acme', 'never')).toBe(1);
    const db = database().db;
    const numbers = await Promise.all(
      Array.from({ length: 5 }, () =>
        db.transaction().execute(async (trx) => {
          const store = new SqlPolicyStore(trx, database().dialect);
          const n = await store.nextVersion('acme', 'seq');
          await store.insert(version('acme', 'seq', n, 'active'));
          return n;
        }),
      ),
    );
    expect(numbers.sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6]);
    expect((await statuses('acme', 'seq')).filter(([, s]) => s === 'active')).toEqual([[6, 'active']]);
  });

  it('reports a second insert of one version number as authz.version_conflict', async () => {
    await expect(policies().insert(version('acme', 'seq', 6, 'rejected'))).rejects.toMatchObject({ code: 'authz.version_conflict' });
  });
});
