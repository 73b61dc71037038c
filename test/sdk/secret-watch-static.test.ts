import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RampartClient, type SecretUpdate, watchSecret } from '../../src/sdk/index.js';
import { type TargetDatabase, createTargetDatabase } from '../secrets/database/target-postgres.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * `watchSecret({ staticRole })`: the static-role rotation scheduler commits a
 * `database.static.rotated` event with the new password, and the watcher re-reads the credentials.
 * Against a real listening server and a throwaway database on the local PostgreSQL.
 */
describe('watchSecret on a static database role', () => {
  let s: TestServer;
  let target: TargetDatabase;
  let client: RampartClient;
  const vault = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await s.app.inject({ method, url, headers: { 'x-vault-token': s.adminToken }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
    if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res;
  };

  beforeAll(async () => {
    target = await createTargetDatabase();
    s = await startTestServer({ listen: true });
    await s.runtime.leases.staticRotation.stop();
    client = new RampartClient({ addr: s.addr!, token: s.adminToken, caPem: s.runtime.trustBundlePem });
    await vault('POST', '/v1/sys/mounts/database', { type: 'database' });
    await vault('POST', '/v1/database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: target.templateUrl,
      username: target.rootUser,
      password: target.rootPassword,
      allowed_roles: 'reporting,manual',
    });
  });
  afterAll(async () => {
    client?.close();
    await s?.close();
    await target?.drop();
  });

  it('hands over the new password after a scheduled rotation', async () => {
    const user = `static_watch_${Date.now()}`;
    await target.query(`create role "${user}" login password 'initial'`);
    target.track(user);
    await vault('POST', '/v1/database/static-roles/reporting', { db_name: 'pg', username: user, rotation_period: '1h' });

    const updates: SecretUpdate[] = [];
    let onUpdate: () => void = () => undefined;
    const stop = await watchSecret(client, { staticRole: 'reporting' }, (u) => {
      updates.push(u);
      onUpdate();
    });
    expect(updates).toHaveLength(1);
    expect(updates[0]!.data).toMatchObject({ username: user });
    expect(await target.passwordMatches(user, updates[0]!.data.password as string)).toBe(true);

    const rotated = new Promise<void>((resolve) => (onUpdate = () => updates.length === 2 && resolve()));
    s.clock.advance(3_600_000);
    expect(await s.runtime.leases.staticRotation.tick()).toEqual({ rotated: 1, failed: 0 });
    const events = await s.runtime.stores.rotation.tenantEventsAfter('default', 0, 100);
    expect(events.at(-1)).toMatchObject({ kind: 'database.static.rotated', mountPath: 'database', path: 'reporting', version: null });
    await s.runtime.rotation.events.poll();
    await rotated;
    expect(updates[1]!.version).toBe(s.clock.now().getTime());
    expect(updates[1]!.data.password).not.toBe(updates[0]!.data.password);
    expect(await target.passwordMatches(user, updates[1]!.data.password as string)).toBe(true);
    expect(updates[1]!.previous).toBeUndefined();
    await stop();
  });

  it('hands over a password rotated by hand (rotate-role)', async () => {
    const user = `static_manual_${Date.now()}`;
    await target.query(`create role "${user}" login password 'initial'`);
    target.track(user);
    await vault('POST', '/v1/database/static-roles/manual', { db_name: 'pg', username: user, rotation_period: '1h' });

    const updates: SecretUpdate[] = [];
    let onUpdate: () => void = () => undefined;
    const stop = await watchSecret(client, { staticRole: 'manual' }, (u) => {
      updates.push(u);
      onUpdate();
    });
    expect(updates).toHaveLength(1);
    const rotated = new Promise<void>((resolve) => (onUpdate = () => updates.length === 2 && resolve()));
    s.clock.advance(1_000);
    await vault('POST', '/v1/database/rotate-role/manual');
    await s.runtime.rotation.events.poll();
    await rotated;
    expect(updates[1]!.data.password).not.toBe(updates[0]!.data.password);
    expect(await target.passwordMatches(user, updates[1]!.data.password as string)).toBe(true);
    await stop();
  });
});
