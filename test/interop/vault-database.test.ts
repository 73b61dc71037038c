import 'reflect-metadata';
import nodeVault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { refusal, vaultClient } from '../support/vault.js';
import { type TargetDatabase, createTargetDatabase } from '../secrets/database/target-postgres.js';

/**
 * The database secrets engine and `sys/leases` through node-vault against a listening server,
 * with a real PostgreSQL as the target (docs/secrets.md, "Database engine" and "Leases"). The
 * server's clock is manual: expiry is driven with `clock.advance` and the expiry worker's tick.
 */
describe.each(TEST_DATABASES)('node-vault database engine and leases ($name)', (database) => {
  let s: TestServer;
  let vault: ReturnType<typeof vaultClient>;
  let target: TargetDatabase;
  const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, `GRANT SELECT ON things TO "{{name}}";`];

  beforeAll(async () => {
    target = await createTargetDatabase();
    s = await startTestServer({ database, listen: true });
    // The test drives expiry itself, so no scheduled pass races its ticks.
    await s.runtime.leases.expiry.stop();
    vault = vaultClient(s);
    await vault.mount({ mount_point: 'database', type: 'database' });
    await vault.write('database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: target.templateUrl,
      username: target.rootUser,
      password: target.rootPassword,
      allowed_roles: 'ro,short',
    });
    await vault.write('database/roles/ro', { db_name: 'pg', creation_statements: CREATE, default_ttl: '1h', max_ttl: '2h' });
  });
  afterAll(async () => {
    await s?.close();
    await target?.drop();
  });

  async function creds(role = 'ro') {
    const r = await vault.read(`database/creds/${role}`);
    target.track(r.data.username);
    return r as { lease_id: string; lease_duration: number; renewable: boolean; data: { username: string; password: string } };
  }

  it('reads back the connection without its password, and the role in Vault’s shape', async () => {
    const config = await vault.read('database/config/pg');
    expect(config.data).toMatchObject({ plugin_name: 'postgresql-database-plugin', allowed_roles: ['ro', 'short'], connection_details: { username: target.rootUser } });
    expect(JSON.stringify(config)).not.toContain(target.rootPassword);
    const role = await vault.read('database/roles/ro');
    expect(role.data).toMatchObject({ db_name: 'pg', default_ttl: 3600, max_ttl: 7200, creation_statements: CREATE });
    const list = await vault.list('database/roles');
    expect(list.data.keys).toEqual(['ro']);
  });

  it('issues a working PostgreSQL credential with a lease', async () => {
    const c = await creds();
    expect(c.lease_id).toMatch(/^database\/creds\/ro\//);
    expect(c.lease_duration).toBe(3600);
    expect(c.renewable).toBe(true);
    expect(await target.passwordMatches(c.data.username, c.data.password)).toBe(true);
    expect(await target.connectAs(c.data.username, c.data.password)).toBe(2);
    const lookup = await vault.write('sys/leases/lookup', { lease_id: c.lease_id });
    expect(lookup.data).toMatchObject({ id: c.lease_id, renewable: true, ttl: 3600, last_renewal: null });
    // The issue is audited with its lease id and user name, never with the password.
    const payloads = (await s.runtime.database.db.selectFrom('audit_events').select('payload').execute()).map((r) => r.payload);
    expect(payloads.some((p) => p.includes(c.lease_id) && p.includes(c.data.username))).toBe(true);
    expect(payloads.some((p) => p.includes(c.data.password))).toBe(false);
  });

  it('renews (capped at max_ttl) and revokes through sys/leases', async () => {
    const c = await creds();
    s.clock.advance(600_000);
    const renewed = await vault.renew({ lease_id: c.lease_id, increment: 3600 });
    expect(renewed).toMatchObject({ lease_id: c.lease_id, renewable: true, lease_duration: 3600 });
    const capped = await vault.renew({ lease_id: c.lease_id, increment: 100 * 3600 });
    expect(capped.lease_duration).toBe(7200 - 600);
    expect(capped.warnings?.[0]).toMatch(/capped/);
    const until = await target.validUntil(c.data.username);
    expect(Math.abs(until!.getTime() - (s.clock.now().getTime() + 6600_000))).toBeLessThan(1000);

    await vault.revoke({ lease_id: c.lease_id });
    expect(await target.roleExists(c.data.username)).toBe(false);
    expect(await refusal(vault.write('sys/leases/lookup', { lease_id: c.lease_id }))).toEqual({ status: 400, body: { errors: ['invalid lease'] } });
  });

  it('revoke with sync=false queues the revocation for the expiry worker', async () => {
    const c = await creds();
    // Vault answers 202 Accepted; node-vault treats every status but 200 and 204 as a failure.
    expect((await refusal(vault.write('sys/leases/revoke', { lease_id: c.lease_id, sync: false }))).status).toBe(202);
    await s.runtime.leases.expiry.tick();
    expect(await target.roleExists(c.data.username)).toBe(false);
  });

  it('revoke-prefix revokes every lease of a role through the expiry worker', async () => {
    const a = await creds();
    const b = await creds();
    const listed = await vault.list('sys/leases/lookup/database/creds/ro/');
    expect(listed.data.keys).toEqual(expect.arrayContaining([a.lease_id.split('/').at(-1), b.lease_id.split('/').at(-1)]));
    await vault.revokePrefix({ path_prefix: 'database/creds/ro' });
    const pass = await s.runtime.leases.expiry.tick();
    expect(pass.revoked).toBeGreaterThanOrEqual(2);
    if (pass.failed > 0) {
      // A transient database error under load: the lease stays and is retried after its backoff.
      s.clock.advance(10_000);
      await s.runtime.leases.expiry.tick();
    }
    expect(await target.roleExists(a.data.username)).toBe(false);
    expect(await target.roleExists(b.data.username)).toBe(false);
    expect(await refusal(vault.list('sys/leases/lookup/database/creds/ro/'))).toMatchObject({ status: 404 });
  });

  it('expiry drops the user once its TTL has passed', async () => {
    await vault.write('database/roles/short', { db_name: 'pg', creation_statements: CREATE, default_ttl: 60 });
    const c = await creds('short');
    s.clock.advance(61_000);
    await s.runtime.leases.expiry.tick();
    expect(await target.roleExists(c.data.username)).toBe(false);
    await expect(target.connectAs(c.data.username, c.data.password)).rejects.toThrow(/does not exist/);
  });

  it('another tenant can neither see nor revoke the lease', async () => {
    const created = await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name: 'globex' } });
    expect(created.statusCode).toBe(201);
    const c = await creds();
    const other = vaultClient(s, s.adminToken, 'globex');
    expect(await refusal(other.write('sys/leases/lookup', { lease_id: c.lease_id }))).toEqual({ status: 400, body: { errors: ['invalid lease'] } });
    await other.revoke({ lease_id: c.lease_id });
    await other.revokePrefix({ path_prefix: 'database/' });
    await s.runtime.leases.expiry.tick();
    expect(await target.roleExists(c.data.username)).toBe(true);
    expect((await vault.write('sys/leases/lookup', { lease_id: c.lease_id })).data.id).toBe(c.lease_id);
    await vault.revoke({ lease_id: c.lease_id });
  });

  it('refuses bad input in Vault’s error shape, with nothing created', async () => {
    expect(await refusal(vault.read('database/creds/nope'))).toMatchObject({ status: 404, body: { errors: ['unknown role: nope'] } });
    expect((await refusal(vault.write('database/roles/x"; drop table things; --', { db_name: 'pg', creation_statements: CREATE }))).status).toBe(400);
    expect((await refusal(vault.write('database/roles/nostatements', { db_name: 'pg' }))).status).toBe(400);
    await vault.write('database/config/down', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/x',
      username: 'u',
      password: 'p-secret',
      allowed_roles: '*',
      verify_connection: false,
    });
    await vault.write('database/roles/down', { db_name: 'down', creation_statements: CREATE });
    const down = await refusal(vault.read('database/creds/down'));
    expect(down.status).toBe(502);
    expect(JSON.stringify(down.body)).toMatch(/could not connect/);
    expect(JSON.stringify(down.body)).not.toContain('p-secret');
    expect(await s.runtime.stores.leases.listByPrefix('default', 'database/creds/down/', { limit: 10 })).toEqual([]);
  });

  it('a revocation the database refuses is retried with backoff and alerted on, never dropped', async () => {
    await vault.write('database/roles/short', { db_name: 'pg', creation_statements: CREATE, default_ttl: 60 });
    const c = await creds('short');
    // Point the connection at a port where nothing listens: the user cannot be dropped.
    await vault.write('database/config/pg', { connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/x', verify_connection: false });
    s.clock.advance(61_000);
    expect(await s.runtime.leases.expiry.tick()).toMatchObject({ failed: 1 });
    const metrics = await s.runtime.metrics.registry.getSingleMetricAsString('rampart_lease_revoke_failures_total');
    expect(metrics).toMatch(/rampart_lease_revoke_failures_total\{engine="database"\} [1-9]/);
    const failed = (await s.runtime.database.db.selectFrom('audit_events').select('payload').execute())
      .map((r) => JSON.parse(r.payload) as { action: string; outcome: string; error_code: string; details?: { lease_id?: string } })
      .filter((e) => e.action === 'secrets:lease-revoke' && e.details?.lease_id === c.lease_id);
    expect(failed).toMatchObject([{ outcome: 'failed', error_code: 'lease.revoke_failed' }]);
    expect((await vault.write('sys/leases/lookup', { lease_id: c.lease_id })).data.id).toBe(c.lease_id);
    expect(await target.roleExists(c.data.username)).toBe(true);

    await vault.write('database/config/pg', { connection_url: target.templateUrl, verify_connection: false });
    s.clock.advance(10_000);
    expect(await s.runtime.leases.expiry.tick()).toMatchObject({ revoked: 1, failed: 0 });
    expect(await target.roleExists(c.data.username)).toBe(false);
  });

  it('refuses to unmount while leases remain', async () => {
    await creds();
    expect((await refusal(vault.unmount({ mount_point: 'database' }))).status).toBe(400);
    // Once its leases are revoked the mount could go; it stays for the next test.
    await vault.revokePrefix({ path_prefix: 'database' });
    await s.runtime.leases.expiry.tick();
    expect(await s.runtime.stores.leases.listByPrefix('default', 'database/', { limit: 1 })).toEqual([]);
  });

  it('rotate-root and static roles', async () => {
    await vault.write('database/rotate-root/pg', {});
    expect(await target.passwordMatches(target.rootUser, target.rootPassword)).toBe(false);
    const user = `static_${Date.now()}`;
    await target.query(`create role "${user}" login password 'initial'`);
    target.track(user);
    await vault.write('database/config/pg', { allowed_roles: 'ro,short,app-static' });
    await vault.write('database/static-roles/app-static', { db_name: 'pg', username: user, rotation_period: '1h' });
    const first = await vault.read('database/static-creds/app-static');
    expect(first.data).toMatchObject({ username: user, rotation_period: 3600, ttl: 3600 });
    expect(await target.passwordMatches(user, first.data.password)).toBe(true);
    await vault.write('database/rotate-role/app-static', {});
    const second = await vault.read('database/static-creds/app-static');
    expect(second.data.password).not.toBe(first.data.password);
    expect(await target.passwordMatches(user, second.data.password)).toBe(true);
    expect((await vault.read('database/static-roles/app-static')).data).toMatchObject({ username: user, rotation_period: 3600 });
    // The engine still issues credentials after its root password changed.
    const c = await creds();
    expect(await target.passwordMatches(c.data.username, c.data.password)).toBe(true);
  });

  it('a Vault ACL policy decides who may read credentials and manage leases', async () => {
    await vault.write('sys/policy/db-app', { policy: 'path "database/creds/ro" { capabilities = ["read"] }\npath "sys/leases/renew" { capabilities = ["update"] }' });
    const created = await vault.tokenCreate({ policies: ['db-app'] });
    const app = nodeVault({ endpoint: s.addr!, token: created.auth.client_token, requestOptions: { ca: s.runtime.trustBundlePem } });
    const c = await app.read('database/creds/ro');
    target.track(c.data.username);
    expect(await target.passwordMatches(c.data.username, c.data.password)).toBe(true);
    expect((await app.renew({ lease_id: c.lease_id, increment: 600 })).lease_duration).toBe(600);
    expect((await refusal(app.revoke({ lease_id: c.lease_id }))).status).toBe(403);
    expect((await refusal(app.revokePrefix({ path_prefix: 'database' }))).status).toBe(403);
    expect((await refusal(app.read('database/config/pg'))).status).toBe(403);
    expect((await refusal(app.write('database/rotate-root/pg', {}))).status).toBe(403);
    const before = await s.runtime.stores.leases.listByPrefix('default', 'database/creds/short/', { limit: 100 });
    expect((await refusal(app.read('database/creds/short'))).status).toBe(403);
    expect(await s.runtime.stores.leases.listByPrefix('default', 'database/creds/short/', { limit: 100 })).toEqual(before);
    // Last on purpose: the user is dropped with the target database's cleanup.
  });
});
