import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { type EngineDeps, writeConfig } from '../../../src/secrets/database/connections.js';
import { createCredential, DatabaseLeaseBackend, PROVISIONAL_LEASE_MS, recordCredential } from '../../../src/secrets/database/dynamic-credentials.js';
import { PostgresqlPlugin } from '../../../src/secrets/database/postgresql-plugin.js';
import { parseRole } from '../../../src/secrets/database/role.js';
import { LeaseExpiry } from '../../../src/secrets/leases/expiry.js';
import { LeaseManager } from '../../../src/secrets/leases/lease-manager.js';
import { SqlDatabaseStore } from '../../../src/store/database-store.js';
import { SqlExpiryLock, SqlLeaseStore } from '../../../src/store/lease-store.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';
import { leaseTransact, memoryBarrier } from '../leases-fixtures.js';
import { type TargetDatabase, createTargetDatabase } from './target-postgres.js';

/**
 * `creds/<role>` in two steps (src/secrets/database/dynamic-credentials.ts): the user is created
 * before the request's store transaction behind a provisional lease, and the transaction turns
 * that lease into the real one. Whatever happens between the two, no user outlives its lease:
 * the expiry worker drops a user whose request never recorded it.
 */

const MOUNT = { path: 'database', accessor: 'database_0002', defaultLeaseTtl: 0, maxLeaseTtl: 0 };
const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`];

describe.each(TEST_DATABASES)('database credentials in two steps (store on $name)', (storeTarget) => {
  const database = freshDatabase(storeTarget);
  let target: TargetDatabase;
  const plugin = new PostgresqlPlugin();
  const clock = new ManualClock(Date.now());
  let deps: EngineDeps;
  let expiry: LeaseExpiry;
  const tenant = 'acme';
  const stores = () => ({ database: new SqlDatabaseStore(database().db), leases: new SqlLeaseStore(database().db) });
  const request = (role: string) => ({ tenant, mount: MOUNT, role, displayName: 'ci' });
  const creating = () => ({ database: stores().database, transact: leaseTransact(database()) });

  beforeAll(async () => {
    target = await createTargetDatabase();
    const sealer = await memoryBarrier(clock);
    deps = { plugin, sealer, clock };
    const manager = new LeaseManager({ sealer, clock, stores: stores() });
    manager.registerBackend('database', new DatabaseLeaseBackend(deps));
    expiry = new LeaseExpiry({
      store: stores().leases,
      transact: leaseTransact(database()),
      lock: new SqlExpiryLock(database().db, database().dialect),
      manager,
      clock,
      auditRow: (e) => ({ tenant: e.tenant, recordedAt: e.time, payload: JSON.stringify(e) }),
    });
    await writeConfig(stores().database, deps, tenant, MOUNT.accessor, 'pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: target.templateUrl,
      username: target.rootUser,
      password: target.rootPassword,
      allowed_roles: '*',
    });
    await stores().database.putRole(parseRole(tenant, MOUNT.accessor, 'ro', { db_name: 'pg', creation_statements: CREATE, default_ttl: '1h', max_ttl: '2h' }, clock.now()));
    await stores()
      .database.putRole(parseRole(tenant, MOUNT.accessor, 'bad', { db_name: 'pg', creation_statements: [...CREATE, 'GRANT SELECT ON no_such_table TO "{{name}}"'] }, clock.now()));
  });
  afterAll(async () => {
    await plugin.close();
    await target?.drop();
  });

  it('creates the user behind a provisional lease, and recording gives the lease its real expiry', async () => {
    const issued = await createCredential(creating(), deps, request('ro'));
    expect(await target.roleExists(issued.username)).toBe(true);
    const provisional = await stores().leases.get(tenant, issued.lease.leaseId);
    expect(provisional?.revokeAfter).toBe(new Date(clock.now().getTime() + PROVISIONAL_LEASE_MS).toISOString());
    expect(provisional?.expiresAt).toBe(new Date(clock.now().getTime() + 3600_000).toISOString());

    await leaseTransact(database())((s) => recordCredential(s.leases, issued));
    const recorded = await stores().leases.get(tenant, issued.lease.leaseId);
    expect(recorded).toEqual(issued.lease);
    expect(recorded?.revokeAfter).toBe(recorded?.expiresAt);
    // Past the provisional deadline, a recorded user is left alone.
    clock.advance(PROVISIONAL_LEASE_MS + 1000);
    await expiry.tick();
    expect(await target.roleExists(issued.username)).toBe(true);
    expect(await stores().leases.get(tenant, issued.lease.leaseId)).toBeDefined();
  });

  it('drops a user whose request never recorded it (its transaction failed, or the process died)', async () => {
    const issued = await createCredential(creating(), deps, request('ro'));
    // The request's transaction rolls back: the provisional lease stays as it was.
    await expect(
      leaseTransact(database())(async (s) => {
        await recordCredential(s.leases, issued);
        throw new Error('the audit event could not be written');
      }),
    ).rejects.toThrow('audit event');
    expect(await stores().leases.get(tenant, issued.lease.leaseId)).toMatchObject({ revokeAfter: expect.any(String) });
    clock.advance(PROVISIONAL_LEASE_MS - 1000);
    await expiry.tick();
    expect(await target.roleExists(issued.username)).toBe(true);
    clock.advance(1000);
    await expiry.tick();
    expect(await target.roleExists(issued.username)).toBe(false);
    expect(await stores().leases.get(tenant, issued.lease.leaseId)).toBeUndefined();
  });

  it('refuses to record a user the expiry worker already dropped', async () => {
    const issued = await createCredential(creating(), deps, request('ro'));
    clock.advance(PROVISIONAL_LEASE_MS);
    await expiry.tick();
    expect(await target.roleExists(issued.username)).toBe(false);
    await expect(leaseTransact(database())((s) => recordCredential(s.leases, issued))).rejects.toMatchObject({ code: 'database.unavailable' });
    expect(await stores().leases.get(tenant, issued.lease.leaseId)).toBeUndefined();
  });

  it('leaves neither user nor lease when the target refuses a creation statement', async () => {
    const before = await stores().leases.listByPrefix(tenant, 'database/creds/bad/', { limit: 10 });
    const err = await createCredential(creating(), deps, request('bad')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'database.statement_failed' });
    expect(await stores().leases.listByPrefix(tenant, 'database/creds/bad/', { limit: 10 })).toEqual(before);
    const users = await target.query<{ n: number }>("select count(*)::int as n from pg_roles where rolname like 'v-ci-bad-%'");
    expect(users.rows[0]!.n).toBe(0);
  });
});
