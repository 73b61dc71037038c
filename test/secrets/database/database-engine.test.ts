import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { configView } from '../../../src/secrets/database/config.js';
import { type EngineDeps, rotateRoot, writeConfig } from '../../../src/secrets/database/connections.js';
import { DatabaseLeaseBackend, issueCredential } from '../../../src/secrets/database/dynamic-credentials.js';
import { PostgresqlPlugin } from '../../../src/secrets/database/postgresql-plugin.js';
import { parseRole } from '../../../src/secrets/database/role.js';
import { StaticRotation } from '../../../src/secrets/database/static-rotation.js';
import { rotate, staticCredentials, writeStaticRole } from '../../../src/secrets/database/static-credentials.js';
import { quoteIdent } from '../../../src/secrets/database/statements.js';
import { LeaseExpiry } from '../../../src/secrets/leases/expiry.js';
import { LeaseManager } from '../../../src/secrets/leases/lease-manager.js';
import { SqlDatabaseStore } from '../../../src/store/database-store.js';
import { SqlExpiryLock, SqlLeaseStore } from '../../../src/store/lease-store.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';
import { leaseTransact, memoryBarrier } from '../leases-fixtures.js';
import { type TargetDatabase, createTargetDatabase } from './target-postgres.js';

/**
 * The database engine against the real local PostgreSQL: generated users exist, carry the
 * password handed out (checked against pg_authid's SCRAM verifier) and can log in and read; they
 * are gone after revoke and expiry; nothing is half-created when PostgreSQL is down or refuses a
 * statement; identifiers are quoted against injection. Time is a ManualClock started at the real
 * time, so `VALID UNTIL` values are meaningful to the server.
 */

const MOUNT = { path: 'database', accessor: 'database_0001', defaultLeaseTtl: 0, maxLeaseTtl: 0 };
const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, `GRANT SELECT ON things TO "{{name}}";`];

describe.each(TEST_DATABASES)('database engine (store on $name)', (storeTarget) => {
  const database = freshDatabase(storeTarget);
  let target: TargetDatabase;
  const plugin = new PostgresqlPlugin();
  const clock = new ManualClock(Date.now());
  let deps: EngineDeps;
  let manager: LeaseManager<ReturnType<typeof stores>>;
  const tenant = 'acme';
  const stores = () => ({ database: new SqlDatabaseStore(database().db), leases: new SqlLeaseStore(database().db) });

  beforeAll(async () => {
    target = await createTargetDatabase();
    const sealer = await memoryBarrier(clock);
    deps = { plugin, sealer, clock };
    manager = new LeaseManager({ sealer, clock, stores: stores() });
    manager.registerBackend('database', new DatabaseLeaseBackend(deps));
    await writeConfig(stores().database, deps, tenant, MOUNT.accessor, 'pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: target.templateUrl,
      username: target.rootUser,
      password: target.rootPassword,
      allowed_roles: ['ro', 'short', 'bad-sql', 'static-*', 'app', 'evil'],
    });
    await stores().database.putRole(parseRole(tenant, MOUNT.accessor, 'ro', { db_name: 'pg', creation_statements: CREATE, default_ttl: '1h', max_ttl: '2h' }, clock.now()));
  });
  afterAll(async () => {
    await plugin.close();
    await target?.drop();
  });

  async function issue(role = 'ro') {
    const s = stores();
    const issued = await issueCredential(s, deps, { tenant, mount: MOUNT, role, displayName: 'ci' });
    target.track(issued.username);
    return issued;
  }

  it('stores the connection with its password sealed and never shows it', async () => {
    const config = await stores().database.getConfig(tenant, MOUNT.accessor, 'pg');
    expect(config?.sealedPassword).toMatch(/^rb1:/);
    expect(config?.sealedPassword).not.toContain(target.rootPassword);
    const view = configView(config!);
    expect(JSON.stringify(view)).not.toContain(target.rootPassword);
    expect(view).toMatchObject({ plugin_name: 'postgresql-database-plugin', connection_details: { connection_url: target.templateUrl, username: target.rootUser }, verify_connection: true });
  });

  it('refuses a connection it cannot verify, another plugin, or a non-PostgreSQL URL, storing nothing', async () => {
    const base = { plugin_name: 'postgresql-database-plugin', username: 'x', password: 'y' };
    await expect(writeConfig(stores().database, deps, tenant, MOUNT.accessor, 'down', { ...base, connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/x' })).rejects.toMatchObject({ code: 'database.config_invalid' });
    await expect(writeConfig(stores().database, deps, tenant, MOUNT.accessor, 'down', { ...base, plugin_name: 'mysql-database-plugin', connection_url: target.templateUrl })).rejects.toMatchObject({ code: 'database.config_invalid' });
    await expect(writeConfig(stores().database, deps, tenant, MOUNT.accessor, 'down', { ...base, connection_url: 'mysql://h/x' })).rejects.toMatchObject({ code: 'database.config_invalid' });
    expect(await stores().database.getConfig(tenant, MOUNT.accessor, 'down')).toBeUndefined();
  });

  it('creates a real PostgreSQL user with the password it hands out, and a lease', async () => {
    const issued = await issue();
    expect(issued.username).toMatch(/^v-ci-ro-[A-Za-z0-9]{20}-\d+$/);
    expect(await target.roleExists(issued.username)).toBe(true);
    expect(await target.passwordMatches(issued.username, issued.password)).toBe(true);
    expect(await target.passwordMatches(issued.username, `${issued.password}x`)).toBe(false);
    expect(await target.connectAs(issued.username, issued.password)).toBe(2);
    const until = await target.validUntil(issued.username);
    expect(Math.abs(until!.getTime() - (clock.now().getTime() + 3600_000))).toBeLessThan(1000);
    const lease = await stores().leases.get(tenant, issued.lease.leaseId);
    expect(lease).toMatchObject({ engine: 'database', mount: 'database', defaultTtlSeconds: 3600, renewable: true });
    expect(lease!.leaseId).toMatch(/^database\/creds\/ro\//);
    expect(lease!.maxExpiresAt).toBe(new Date(clock.now().getTime() + 7200_000).toISOString());
    // The password is nowhere in the store, sealed or not.
    expect(lease!.sealedData).not.toContain(issued.password);
  });

  it('renew extends the lease and the user’s VALID UNTIL; revoke drops the user', async () => {
    const issued = await issue();
    clock.advance(600_000);
    const renewed = await manager.renew(stores(), tenant, issued.lease.leaseId, 3600);
    expect(renewed.lease.expiresAt).toBe(new Date(clock.now().getTime() + 3600_000).toISOString());
    const until = await target.validUntil(issued.username);
    expect(Math.abs(until!.getTime() - Date.parse(renewed.lease.expiresAt))).toBeLessThan(1000);

    expect(await manager.revoke(stores(), tenant, issued.lease.leaseId)).toBe(true);
    expect(await target.roleExists(issued.username)).toBe(false);
    await expect(target.connectAs(issued.username, issued.password)).rejects.toThrow(/does not exist/);
    // A second revocation of a user already gone succeeds (idempotent, for retries after a crash).
    await new DatabaseLeaseBackend(deps).revoke(issued.lease, { mount: MOUNT.accessor, db_name: 'pg', username: issued.username, revocation_statements: [], renew_statements: [] }, stores());
  });

  it('expiry drops the user on the expiry worker’s tick', async () => {
    await stores().database.putRole(parseRole(tenant, MOUNT.accessor, 'short', { db_name: 'pg', creation_statements: CREATE, default_ttl: 60 }, clock.now()));
    const issued = await issue('short');
    expect(await target.connectAs(issued.username, issued.password)).toBe(2);
    const expiry = new LeaseExpiry({
      store: stores().leases,
      transact: leaseTransact(database()),
      lock: new SqlExpiryLock(database().db, database().dialect),
      manager,
      clock,
      auditRow: (e) => ({ tenant: e.tenant, recordedAt: e.time, payload: JSON.stringify(e) }),
    });
    clock.advance(59_000);
    await expiry.tick();
    expect(await target.roleExists(issued.username)).toBe(true);
    clock.advance(1_000);
    const pass = await expiry.tick();
    expect(pass.revoked).toBeGreaterThanOrEqual(1);
    expect(await target.roleExists(issued.username)).toBe(false);
    await expect(target.connectAs(issued.username, issued.password)).rejects.toThrow(/does not exist/);
    expect(await stores().leases.get(tenant, issued.lease.leaseId)).toBeUndefined();
  });

  it('PostgreSQL down: a clear error and nothing created, neither lease nor user', async () => {
    await writeConfig(stores().database, deps, tenant, MOUNT.accessor, 'down', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/x',
      username: 'u',
      password: 'secret-root-pw',
      allowed_roles: '*',
      verify_connection: false,
    });
    await stores().database.putRole(parseRole(tenant, MOUNT.accessor, 'app', { db_name: 'down', creation_statements: CREATE }, clock.now()));
    const before = await stores().leases.listByPrefix(tenant, 'database/creds/app/', { limit: 10 });
    const err = await issue('app').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'database.unavailable' });
    expect(String((err as Error).message)).not.toContain('secret-root-pw');
    expect(await stores().leases.listByPrefix(tenant, 'database/creds/app/', { limit: 10 })).toEqual(before);
  });

  it('a statement PostgreSQL refuses rolls everything back; the password never appears in the error', async () => {
    await stores().database.putRole(
      parseRole(tenant, MOUNT.accessor, 'bad-sql', { db_name: 'pg', creation_statements: [...CREATE, `GRANT SELECT ON no_such_table TO "{{name}}" -- '{{password}}'`] }, clock.now()),
    );
    const users = async () => (await target.query<{ n: number }>("select count(*)::int as n from pg_roles where rolname like 'v-ci-bad-sql-%'")).rows[0]!.n;
    const err = (await issue('bad-sql').catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('database.statement_failed');
    expect(err.message).toMatch(/no_such_table/);
    expect(await users()).toBe(0);
    expect(await stores().leases.listByPrefix(tenant, 'database/creds/bad-sql/', { limit: 10 })).toEqual([]);
  });

  it('a lease that cannot be stored rolls the new user back', async () => {
    const s = stores();
    const failing = { database: s.database, leases: { ...s.leases, insert: async () => Promise.reject(new Error('store down')) } as unknown as SqlLeaseStore };
    const users = async () => (await target.query<{ n: number }>("select count(*)::int as n from pg_roles where rolname like 'v-ci-ro-%'")).rows[0]!.n;
    const before = await users();
    await expect(issueCredential(failing, deps, { tenant, mount: MOUNT, role: 'ro', displayName: 'ci' })).rejects.toThrow('store down');
    expect(await users()).toBe(before);
  });

  it('unknown and disallowed roles are refused', async () => {
    await expect(issue('nope')).rejects.toMatchObject({ code: 'database.role_not_found' });
    await stores().database.putRole(parseRole(tenant, MOUNT.accessor, 'other', { db_name: 'pg', creation_statements: CREATE }, clock.now()));
    await expect(issue('other')).rejects.toMatchObject({ code: 'database.role_not_allowed' });
    // Another tenant sees none of this tenant's roles or connections.
    await expect(issueCredential(stores(), deps, { tenant: 'globex', mount: MOUNT, role: 'ro', displayName: 'ci' })).rejects.toMatchObject({ code: 'database.role_not_found' });
  });

  it('rotate-root changes the connection user’s password in PostgreSQL; the old one stops matching', async () => {
    await rotateRoot(stores().database, deps, tenant, MOUNT.accessor, 'pg');
    expect(await target.passwordMatches(target.rootUser, target.rootPassword)).toBe(false);
    const config = await stores().database.getConfig(tenant, MOUNT.accessor, 'pg');
    const stored = Buffer.from(deps.sealer.decrypt(tenant, `database/${MOUNT.accessor}/config/pg`, config!.sealedPassword)).toString('utf8');
    expect(stored).not.toBe(target.rootPassword);
    expect(await target.passwordMatches(target.rootUser, stored)).toBe(true);
    // The engine keeps working with the new password.
    const issued = await issue();
    expect(await target.passwordMatches(issued.username, issued.password)).toBe(true);
  });

  it('static roles: takes over a user, rotates on demand and on schedule', async () => {
    const user = `app_static_${Date.now()}`;
    await target.query(`create role ${quoteIdent(user)} login password 'initial'`);
    target.track(user);
    const role = await writeStaticRole(stores().database, deps, tenant, MOUNT.accessor, 'static-app', { db_name: 'pg', username: user, rotation_period: '1h' });
    expect(await target.passwordMatches(user, 'initial')).toBe(false);
    const creds = staticCredentials(role, deps);
    expect(creds).toMatchObject({ username: user, rotation_period: 3600, ttl: 3600 });
    expect(await target.passwordMatches(user, creds.password as string)).toBe(true);
    expect(role.sealedPassword).not.toContain(creds.password as string);

    const rotated = await rotate(stores().database, deps, role);
    const next = staticCredentials(rotated, deps).password as string;
    expect(next).not.toBe(creds.password);
    expect(await target.passwordMatches(user, next)).toBe(true);

    const transact = <T>(work: (s: { database: SqlDatabaseStore }) => Promise<T>) => database().db.transaction().execute((trx) => work({ database: new SqlDatabaseStore(trx) }));
    const rotation = new StaticRotation({ store: stores().database, transact, deps, clock, lock: new SqlExpiryLock(database().db, database().dialect, 'rampart.test.static') });
    expect(await rotation.tick()).toEqual({ rotated: 0, failed: 0 });
    clock.advance(3600_000);
    expect(await rotation.tick()).toMatchObject({ rotated: 1 });
    const scheduled = await stores().database.getStaticRole(tenant, MOUNT.accessor, 'static-app');
    const third = staticCredentials(scheduled!, deps).password as string;
    expect(third).not.toBe(next);
    expect(await target.passwordMatches(user, third)).toBe(true);
    expect(await target.passwordMatches(user, next)).toBe(false);
  });

  it('SQL injection in usernames and role names is inert', async () => {
    // A user whose name would end a naively quoted identifier and drop the table.
    const evil = `evil"; DROP TABLE things; --`;
    await target.query(`create role ${quoteIdent(evil)} login password 'initial'`);
    target.track(evil);
    const role = await writeStaticRole(stores().database, deps, tenant, MOUNT.accessor, 'evil', { db_name: 'pg', username: evil, rotation_period: 60 });
    expect(await target.passwordMatches(evil, staticCredentials(role, deps).password as string)).toBe(true);
    expect((await target.query('select count(*)::int as n from things')).rows[0].n).toBe(2);

    // A username that does not exist is refused, whatever it contains.
    await expect(
      writeStaticRole(stores().database, deps, tenant, MOUNT.accessor, 'static-x', { db_name: 'pg', username: `${target.rootUser}" WITH SUPERUSER; --`, rotation_period: 60 }),
    ).rejects.toMatchObject({ code: 'database.role_invalid' });
    // Role names are Vault names: a quote or a space is refused before any SQL runs.
    expect(() => parseRole(tenant, MOUNT.accessor, 'x"; DROP TABLE things; --', { db_name: 'pg', creation_statements: CREATE }, clock.now())).toThrow(expect.objectContaining({ code: 'database.role_invalid' }));
    expect((await target.query<{ rolsuper: boolean }>('select rolsuper from pg_roles where rolname = $1', [target.rootUser])).rows[0]!.rolsuper).toBe(false);
  });
});
