import { describe, expect, it } from 'vitest';
import type { DatabaseConfig } from '../../../src/secrets/database/config.js';
import type { DynamicRole } from '../../../src/secrets/database/role.js';
import type { StaticRole } from '../../../src/secrets/database/static-role.js';
import { SqlDatabaseStore } from '../../../src/store/database-store.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';

/** Contract suite for the DatabaseStore port (src/secrets/database/store.ts) on SQLite and PostgreSQL. */
describe.each(TEST_DATABASES)('DatabaseStore on $name', (target) => {
  const database = freshDatabase(target);
  const store = () => new SqlDatabaseStore(database().db);

  const config: DatabaseConfig = {
    tenant: 'acme',
    mount: 'database_1',
    name: 'pg',
    pluginName: 'postgresql-database-plugin',
    connectionUrl: 'postgres://{{username}}:{{password}}@h/db',
    username: 'root',
    sealedPassword: 'rb1:1:abc',
    allowedRoles: ['ro', 'static-*'],
    verifyConnection: false,
    rootRotationStatements: [`ALTER ROLE "{{name}}" PASSWORD '{{password}}'`],
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
  const role: DynamicRole = {
    tenant: 'acme',
    mount: 'database_1',
    name: 'ro',
    dbName: 'pg',
    creationStatements: ['CREATE ROLE "{{name}}"', 'GRANT x TO "{{name}}"'],
    revocationStatements: [],
    renewStatements: ['ALTER ROLE "{{name}}" VALID UNTIL \'{{expiration}}\''],
    defaultTtl: 3600,
    maxTtl: 7200,
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
  const staticRole = (name: string, next: string, tenant = 'acme'): StaticRole => ({
    tenant,
    mount: 'database_1',
    name,
    dbName: 'pg',
    username: `u_${name}`,
    rotationPeriod: 60,
    rotationStatements: [],
    sealedPassword: 'rb1:1:def',
    lastRotatedAt: '2026-01-01T00:00:00.000Z',
    nextRotationAt: next,
    rotationAttempts: 0,
    lastError: null,
  });

  it('round-trips connections and roles, upserts, and scopes them by tenant and mount', async () => {
    await store().putConfig(config);
    await store().putRole(role);
    expect(await store().getConfig('acme', 'database_1', 'pg')).toEqual(config);
    expect(await store().getRole('acme', 'database_1', 'ro')).toEqual(role);
    expect(await store().getConfig('globex', 'database_1', 'pg')).toBeUndefined();
    expect(await store().getRole('acme', 'database_2', 'ro')).toBeUndefined();
    await store().putConfig({ ...config, allowedRoles: ['*'], verifyConnection: true });
    expect(await store().getConfig('acme', 'database_1', 'pg')).toMatchObject({ allowedRoles: ['*'], verifyConnection: true });
    await store().putRole({ ...role, name: 'aa' });
    expect(await store().listRoles('acme', 'database_1')).toEqual(['aa', 'ro']);
    expect(await store().listConfigs('acme', 'database_1')).toEqual(['pg']);
    expect(await store().listRoles('globex', 'database_1')).toEqual([]);
    expect(await store().deleteRole('globex', 'database_1', 'aa')).toBe(false);
    expect(await store().deleteRole('acme', 'database_1', 'aa')).toBe(true);
  });

  it('lists due static roles across tenants, earliest first', async () => {
    await store().putStaticRole(staticRole('b', '2026-01-01T02:00:00.000Z'));
    await store().putStaticRole(staticRole('a', '2026-01-01T01:00:00.000Z', 'globex'));
    await store().putStaticRole(staticRole('c', '2026-01-01T03:00:00.000Z'));
    expect((await store().dueStaticRoles('2026-01-01T02:00:00.000Z', 10)).map((r) => [r.tenant, r.name])).toEqual([
      ['globex', 'a'],
      ['acme', 'b'],
    ]);
    const updated = { ...staticRole('b', '2026-01-01T05:00:00.000Z'), rotationAttempts: 2, lastError: 'refused' };
    await store().putStaticRole(updated);
    expect(await store().getStaticRole('acme', 'database_1', 'b')).toEqual(updated);
    expect(await store().listStaticRoles('acme', 'database_1')).toEqual(['b', 'c']);
  });

  it('keeps a pending password in its own column, clears it, and lists the connections left with one', async () => {
    const pending = { ...config, name: 'pg-pending', pendingSealedPassword: 'rb1:1:new' };
    await store().putConfig(pending);
    await store().putConfig({ ...config, tenant: 'globex', pendingSealedPassword: 'rb1:1:other' });
    expect(await store().getConfig('acme', 'database_1', 'pg-pending')).toEqual(pending);
    expect((await store().getConfig('acme', 'database_1', 'pg'))?.pendingSealedPassword).toBeUndefined();
    expect((await store().pendingRootRotations()).map((c) => [c.tenant, c.name, c.sealedPassword, c.pendingSealedPassword])).toEqual([
      ['acme', 'pg-pending', 'rb1:1:abc', 'rb1:1:new'],
      ['globex', 'pg', 'rb1:1:abc', 'rb1:1:other'],
    ]);
    // Made current: the record written without a pending password clears the column.
    await store().putConfig({ ...pending, sealedPassword: 'rb1:1:new', pendingSealedPassword: undefined });
    expect(await store().getConfig('acme', 'database_1', 'pg-pending')).not.toHaveProperty('pendingSealedPassword');
    expect((await store().pendingRootRotations()).map((c) => c.tenant)).toEqual(['globex']);
    await store().deleteConfig('acme', 'database_1', 'pg-pending');
    await store().deleteConfig('globex', 'database_1', 'pg');

    const rotating = { ...staticRole('p', '2026-01-01T04:00:00.000Z'), pendingSealedPassword: 'rb1:1:next' };
    await store().putStaticRole(rotating);
    expect(await store().getStaticRole('acme', 'database_1', 'p')).toEqual(rotating);
    expect((await store().dueStaticRoles('2026-01-01T04:00:00.000Z', 10)).find((r) => r.name === 'p')?.pendingSealedPassword).toBe('rb1:1:next');
    await store().putStaticRole({ ...rotating, pendingSealedPassword: undefined });
    expect(await store().getStaticRole('acme', 'database_1', 'p')).not.toHaveProperty('pendingSealedPassword');
    await store().deleteStaticRole('acme', 'database_1', 'p');
  });

  it('purges one mount of one tenant', async () => {
    await store().purgeMount('acme', 'database_1');
    expect(await store().getConfig('acme', 'database_1', 'pg')).toBeUndefined();
    expect(await store().listRoles('acme', 'database_1')).toEqual([]);
    expect(await store().listStaticRoles('acme', 'database_1')).toEqual([]);
    expect(await store().getStaticRole('globex', 'database_1', 'a')).toBeDefined();
  });
});
