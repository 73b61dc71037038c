import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WrappedResponseRecord } from '../../src/secrets/wrapping/store.js';
import { type StoreDatabase, openDatabase } from '../../src/store/database.js';
import { SqlKv1Store } from '../../src/store/kv1-store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { SqlTokenRoleStore } from '../../src/store/token-role-store.js';
import { SqlWrappingStore } from '../../src/store/wrapping-store.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * Contract suites for the storage ports of token roles (src/identity/store.ts), response wrapping
 * (src/secrets/wrapping/store.ts) and KV v1 (src/secrets/kv1/store.ts), on every store in
 * TEST_DATABASES; two connections to one database stand for two replicas.
 */
describe.each(TEST_DATABASES)('token role, wrapping and KV v1 stores on $name', (target) => {
  let replicas: [StoreDatabase, StoreDatabase];
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), `rampart-vault-stores-${target.name}-`));
    const { url, drop } = await target.create();
    replicas = [await openDatabase({ databaseUrl: url, dataDir }), await openDatabase({ databaseUrl: url, dataDir })];
    cleanup = async () => {
      for (const r of replicas) await r.close();
      await drop();
      rmSync(dataDir, { recursive: true, force: true });
    };
    const tenants = new SqlTenantStore(replicas[0].db);
    for (const name of ['acme', 'globex']) await tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: '2026-01-01T00:00:00.000Z' });
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('stores token roles per tenant', async () => {
    const roles = new SqlTokenRoleStore(replicas[0].db);
    const role = {
      tenant: 'acme',
      name: 'web',
      allowedPolicies: ['a', 'b'],
      disallowedPolicies: ['admin'],
      orphan: true,
      renewable: false,
      pathSuffix: 'v01',
      tokenPeriod: 60,
      tokenExplicitMaxTtl: 3600,
      tokenNumUses: 3,
      tokenNoDefaultPolicy: true,
      updatedAt: '2026-01-01T00:00:00.000Z',
      tokenBoundCidrs: ['10.0.0.0/8', '2001:db8::/32'],
    };
    await roles.put(role);
    await roles.put({ ...role, name: 'api', orphan: false, tokenBoundCidrs: [] });
    expect(await roles.get('acme', 'web')).toEqual(role);
    expect((await roles.get('acme', 'api'))?.tokenBoundCidrs).toEqual([]);
    expect(await roles.get('globex', 'web')).toBeUndefined();
    expect(await roles.list('acme')).toEqual(['api', 'web']);
    expect(await roles.list('globex')).toEqual([]);
    await roles.put({ ...role, allowedPolicies: ['c'] });
    expect((await roles.get('acme', 'web'))?.allowedPolicies).toEqual(['c']);
    expect(await roles.delete('globex', 'web')).toBe(false);
    expect(await roles.delete('acme', 'web')).toBe(true);
    expect(await roles.list('acme')).toEqual(['api']);
  });

  const wrapped = (accessor: string, expiresAt: string): WrappedResponseRecord => ({
    accessor,
    tenant: 'acme',
    secretHash: 'f'.repeat(64),
    creationPath: 'kv/data/app',
    creationTime: '2026-01-01T00:00:00.000Z',
    ttl: 300,
    expiresAt,
    wrappedAccessor: undefined,
    ciphertext: 'rb1:1:xyz',
  });

  it('hands a wrapped response to exactly one of many concurrent takers across replicas', async () => {
    const stores = replicas.map((r) => new SqlWrappingStore(r.db));
    await stores[0]!.insert({ ...wrapped('w-race', '2026-01-01T00:05:00.000Z'), wrappedAccessor: 'acc' });
    expect(await stores[1]!.get('w-race')).toMatchObject({ accessor: 'w-race', wrappedAccessor: 'acc', ttl: 300 });
    const taken = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % 2]!.take('w-race')));
    expect(taken.filter(Boolean)).toHaveLength(1);
    expect(await stores[0]!.get('w-race')).toBeUndefined();
  });

  it('purges exactly the expired wrapped responses', async () => {
    const store = new SqlWrappingStore(replicas[0].db);
    await store.insert(wrapped('w-old', '2026-01-01T00:01:00.000Z'));
    await store.insert(wrapped('w-new', '2026-01-01T00:10:00.000Z'));
    expect(await store.purgeExpired('2026-01-01T00:05:00.000Z')).toBe(1);
    expect(await store.get('w-old')).toBeUndefined();
    expect(await store.get('w-new')).toBeDefined();
  });

  it('keeps KV v1 values per tenant and mount, lists by exact prefix, purges a mount', async () => {
    const kv = new SqlKv1Store(replicas[0].db);
    const put = (tenant: string, mount: string, path: string, at = '2026-01-01T00:00:00.000Z') => kv.put({ tenant, mount, path, ciphertext: `c:${path}`, createdAt: at, updatedAt: at });
    for (const p of ['a_b/x', 'aXb/y', 'a%/z', 'A_b/w']) await put('acme', 'kv_1', p);
    await put('globex', 'kv_1', 'a_b/other');
    await put('acme', 'kv_2', 'a_b/elsewhere');
    // No LIKE: `_` and `%` are literal and case matters.
    expect(await kv.paths('acme', 'kv_1', 'a_b/')).toEqual(['a_b/x']);
    expect(await kv.paths('acme', 'kv_1', 'a%/')).toEqual(['a%/z']);
    await put('acme', 'kv_1', 'a_b/x', '2026-02-01T00:00:00.000Z');
    expect(await kv.get('acme', 'kv_1', 'a_b/x')).toMatchObject({ createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-02-01T00:00:00.000Z' });
    expect(await kv.get('globex', 'kv_1', 'a_b/x')).toBeUndefined();
    expect(await kv.delete('acme', 'kv_1', 'aXb/y')).toBe(true);
    expect(await kv.delete('acme', 'kv_1', 'aXb/y')).toBe(false);
    await kv.purgeMount('acme', 'kv_1');
    expect(await kv.paths('acme', 'kv_1', '')).toEqual([]);
    expect(await kv.paths('acme', 'kv_2', '')).toEqual(['a_b/elsewhere']);
    expect(await kv.paths('globex', 'kv_1', '')).toEqual(['a_b/other']);
  });
});
