import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RotationScheduler } from '../../src/secrets/rotation/scheduler.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * KV rotation (docs/secrets.md#rotation) through the Vault API, on each store, with the manual
 * clock: the scheduler is ticked by hand after the clock moves, nothing sleeps.
 */
describe.each(TEST_DATABASES)('KV rotation on $name', (database) => {
  let s: TestServer;
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH', url: string, payload?: unknown, token?: string) =>
    s.app.inject({ method, url, headers: { 'x-vault-token': token ?? s.adminToken }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
  const tick = () => s.runtime.rotation.scheduler.tick();
  const events = async (path: string) => {
    const rows = await s.runtime.stores.rotation.tenantEventsAfter('default', 0, 1000);
    return rows.filter((e) => e.path === path).map((e) => ({ kind: e.kind, version: e.version }));
  };
  const auditActions = async () =>
    (await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id').execute()).map((r) => JSON.parse(r.payload) as Record<string, unknown>);

  beforeAll(async () => {
    s = await startTestServer({ database });
    // Ticked by hand below: a background pass must not race a test's clock moves.
    await s.runtime.rotation.scheduler.stop();
    expect((await call('POST', '/v1/sys/mounts/secret', { type: 'kv' })).statusCode).toBe(204);
  });
  afterAll(async () => {
    await s.close();
  });

  it('rotates a secret with a generator at the end of its period, keeping the other keys', async () => {
    expect((await call('POST', '/v1/secret/data/app/db', { data: { username: 'app', password: 'initial' } })).statusCode).toBe(200);
    const set = await call('POST', '/v1/secret/metadata/app/db', {
      rotation_period: '1h',
      rotation_grace_period: '10m',
      rotation_generator: { keys: { password: { length: 40, charset: 'alnum' } } },
    });
    expect(set.statusCode).toBe(204);
    const meta = (await call('GET', '/v1/secret/metadata/app/db')).json().data;
    expect(meta).toMatchObject({ rotation_period: '1h0m0s', rotation_grace_period: '10m0s', rotation_state: 'scheduled', last_rotation_time: '', rotation_generator: { keys: { password: { length: 40, charset: 'alnum' } } } });
    expect(Date.parse(meta.next_rotation_time) - s.clock.now().getTime()).toBe(3_600_000);

    s.clock.advance(3_599_000);
    expect(await tick()).toMatchObject({ rotated: 0 });
    expect((await call('GET', '/v1/secret/data/app/db')).json().data.metadata.version).toBe(1);

    s.clock.advance(1000);
    expect(await tick()).toMatchObject({ rotated: 1, failed: 0 });
    const current = (await call('GET', '/v1/secret/data/app/db')).json().data;
    expect(current.metadata.version).toBe(2);
    expect(current.data.username).toBe('app');
    expect(current.data.password).toMatch(/^[A-Za-z0-9]{40}$/);
    const after = (await call('GET', '/v1/secret/metadata/app/db')).json().data;
    expect(after.last_rotation_time).toBe(s.clock.now().toISOString());
    expect(Date.parse(after.next_rotation_time) - s.clock.now().getTime()).toBe(3_600_000);
    expect(await events('app/db')).toEqual([
      { kind: 'kv.written', version: 1 },
      { kind: 'kv.rotated', version: 2 },
    ]);
    const rotations = (await auditActions()).filter((e) => e.action === 'secrets:kv-rotate');
    expect(rotations.at(-1)).toMatchObject({ outcome: 'success', resource: { type: 'Rampart::VaultPath', id: 'secret/data/app/db' }, ocsf: { class_uid: 3004 } });
    // The audit event names the keys, never their values.
    expect(JSON.stringify(rotations)).not.toContain(current.data.password);
  });

  it('keeps the previous version readable during the grace period, then soft-deletes it', async () => {
    const v1 = await call('GET', '/v1/secret/data/app/db?version=1');
    expect(v1.statusCode).toBe(200);
    expect(v1.json().data.data.password).toBe('initial');
    expect(v1.json().data.metadata.deletion_time).not.toBe('');

    s.clock.advance(9 * 60_000);
    expect((await call('GET', '/v1/secret/data/app/db?version=1')).statusCode).toBe(200);
    s.clock.advance(60_000);
    // Unreadable on time even before the scheduler announces it.
    expect((await call('GET', '/v1/secret/data/app/db?version=1')).statusCode).toBe(404);
    expect(await tick()).toMatchObject({ graceEnded: 1 });
    expect((await events('app/db')).at(-1)).toEqual({ kind: 'version.grace_ended', version: 1 });
    expect((await call('GET', '/v1/secret/data/app/db?version=1')).statusCode).toBe(404);
    expect((await call('GET', '/v1/secret/data/app/db')).json().data.metadata.version).toBe(2);
  });

  it('announces rotation_due without a generator, and an application write completes the rotation', async () => {
    await call('POST', '/v1/secret/data/app/api', { data: { key: 'k1' } });
    expect((await call('POST', '/v1/secret/metadata/app/api', { rotation_period: 600, rotation_grace_period: 300 })).statusCode).toBe(204);
    s.clock.advance(600_000);
    expect(await tick()).toMatchObject({ due: 1, rotated: 0 });
    expect((await call('GET', '/v1/secret/metadata/app/api')).json().data.rotation_state).toBe('due');
    expect((await events('app/api')).at(-1)).toEqual({ kind: 'kv.rotation_due', version: 1 });
    // Announced once: nothing more until the application writes.
    expect(await tick()).toMatchObject({ due: 0 });
    expect((await call('GET', '/v1/secret/data/app/api')).json().data.data).toEqual({ key: 'k1' });

    expect((await call('POST', '/v1/secret/data/app/api', { data: { key: 'k2' } })).statusCode).toBe(200);
    const meta = (await call('GET', '/v1/secret/metadata/app/api')).json().data;
    expect(meta).toMatchObject({ rotation_state: 'scheduled', last_rotation_time: s.clock.now().toISOString() });
    expect((await events('app/api')).at(-1)).toEqual({ kind: 'kv.rotated', version: 2 });
    const previous = await call('GET', '/v1/secret/data/app/api?version=1');
    expect(previous.statusCode).toBe(200);
    expect(previous.json().data.metadata.deletion_time).toBe(new Date(s.clock.now().getTime() + 300_000).toISOString());
  });

  it('rotates a due secret at the next pass once a generator is added', async () => {
    await call('POST', '/v1/secret/data/late', { data: { token: 't1' } });
    await call('POST', '/v1/secret/metadata/late', { rotation_period: 600 });
    s.clock.advance(600_000);
    await tick();
    expect((await call('GET', '/v1/secret/metadata/late')).json().data.rotation_state).toBe('due');
    await call('POST', '/v1/secret/metadata/late', { rotation_generator: { keys: { token: { length: 16, charset: 'hex' } } } });
    await tick();
    const current = (await call('GET', '/v1/secret/data/late')).json().data;
    expect(current.metadata.version).toBe(2);
    expect(current.data.token).toMatch(/^[0-9a-f]{16}$/);
  });

  it('does not let max_versions destroy a version still in grace', async () => {
    await call('POST', '/v1/secret/data/one', { data: { v: '1' } });
    await call('POST', '/v1/secret/metadata/one', { max_versions: 1, rotation_period: '1h', rotation_grace_period: '30m' });
    expect((await call('POST', '/v1/secret/data/one', { data: { v: '2' } })).statusCode).toBe(200);
    // max_versions 1 alone would have pruned version 1; the grace keeps it.
    expect((await call('GET', '/v1/secret/data/one?version=1')).json().data.data).toEqual({ v: '1' });
    expect((await call('GET', '/v1/secret/metadata/one')).json().data.oldest_version).toBe(1);
    s.clock.advance(30 * 60_000);
    await tick();
    const meta = (await call('GET', '/v1/secret/metadata/one')).json().data;
    expect(meta.oldest_version).toBe(2);
    expect(Object.keys(meta.versions)).toEqual(['2']);
  });

  it('retries a failed rotation with backoff and surfaces each failure', async () => {
    await call('POST', '/v1/secret/data/fragile', { data: { password: 'p' } });
    await call('POST', '/v1/secret/metadata/fragile', { rotation_period: '1h', rotation_generator: { keys: { password: {} } } });
    // The stored ciphertext is damaged (a bad restore, say): the rotation cannot keep the other keys.
    const row = await s.runtime.database.db.selectFrom('kv_versions').select(['ciphertext']).where('path', '=', 'fragile').executeTakeFirstOrThrow();
    await s.runtime.database.db.updateTable('kv_versions').set({ ciphertext: `${row.ciphertext!.slice(0, -8)}AAAAAAAA` }).where('path', '=', 'fragile').execute();
    const failures = () => s.runtime.metrics.registry.getSingleMetric('rampart_secret_rotation_failures_total')!.get();

    s.clock.advance(3_600_000);
    expect(await tick()).toMatchObject({ failed: 1 });
    let meta = (await call('GET', '/v1/secret/metadata/fragile')).json().data;
    expect(meta).toMatchObject({ rotation_attempts: 1, rotation_state: 'scheduled', current_version: 1 });
    expect(meta.rotation_last_error).toContain('secrets.decrypt_failed');
    expect(Date.parse(meta.next_rotation_time) - s.clock.now().getTime()).toBe(10_000);
    expect((await failures()).values[0]!.value).toBe(1);
    const failed = (await auditActions()).filter((e) => e.action === 'secrets:kv-rotate' && e.outcome === 'failed');
    expect(failed.at(-1)).toMatchObject({ error_code: 'secrets.rotation_failed', details: { attempts: 1, path: 'fragile' }, ocsf: { severity_id: 3 } });

    // Not retried before its time, then retried with a doubled delay.
    expect(await tick()).toMatchObject({ failed: 0 });
    s.clock.advance(10_000);
    expect(await tick()).toMatchObject({ failed: 1 });
    meta = (await call('GET', '/v1/secret/metadata/fragile')).json().data;
    expect(meta.rotation_attempts).toBe(2);
    expect(Date.parse(meta.next_rotation_time) - s.clock.now().getTime()).toBe(20_000);

    // Repaired: the next attempt succeeds and the count resets.
    await s.runtime.database.db.updateTable('kv_versions').set({ ciphertext: row.ciphertext }).where('path', '=', 'fragile').execute();
    s.clock.advance(20_000);
    expect(await tick()).toMatchObject({ failed: 0 });
    meta = (await call('GET', '/v1/secret/metadata/fragile')).json().data;
    expect(meta).toMatchObject({ rotation_attempts: 0, rotation_last_error: '', current_version: 2 });
  });

  it.each(['changed', 'deleted'] as const)('keeps a policy %s while its rotation was failing', async (change) => {
    const path = `racing-${change}`;
    await call('POST', `/v1/secret/data/${path}`, { data: { password: 'p' } });
    await call('POST', `/v1/secret/metadata/${path}`, { rotation_period: '1h', rotation_generator: { keys: { password: {} } } });
    // Damaged ciphertext: the rotation fails.
    const row = await s.runtime.database.db.selectFrom('kv_versions').select(['ciphertext']).where('path', '=', path).executeTakeFirstOrThrow();
    await s.runtime.database.db.updateTable('kv_versions').set({ ciphertext: `${row.ciphertext!.slice(0, -8)}AAAAAAAA` }).where('path', '=', path).execute();
    s.clock.advance(3_600_000);
    const real = s.runtime.stores.rotation;
    const store = Object.assign(Object.create(real) as typeof real, { duePolicies: async (now: string, limit: number) => (await real.duePolicies(now, limit)).filter((p) => p.path === path) });
    const alerts: boolean[] = [];
    let acted = false;
    const scheduler = new RotationScheduler({
      store,
      sealer: s.runtime.secretsSeal.barrier,
      clock: s.clock,
      lock: { run: (work) => work() },
      auditRow: (e) => s.runtime.audit.rowFor(e),
      onAlert: (_policy, _err, _attempts, retrying) => alerts.push(retrying),
      // Between the failed attempt and the record of its failure, an operator acts.
      transact: async (work) => {
        try {
          return await s.runtime.transact(work);
        } catch (err) {
          if (!acted) {
            acted = true;
            const res = change === 'changed' ? await call('POST', `/v1/secret/metadata/${path}`, { rotation_period: '2h' }) : await call('DELETE', `/v1/secret/metadata/${path}`);
            expect(res.statusCode).toBe(204);
          }
          throw err;
        }
      },
    });
    expect(await scheduler.tick()).toMatchObject({ failed: 1 });
    expect(alerts).toEqual([false]);
    const policies = await s.runtime.database.db.selectFrom('secrets_rotation_policies').selectAll().where('path', '=', path).execute();
    if (change === 'deleted') {
      expect(policies).toEqual([]);
      expect((await call('GET', `/v1/secret/metadata/${path}`)).statusCode).toBe(404);
    } else {
      expect(policies).toHaveLength(1);
      expect(policies[0]).toMatchObject({ period_seconds: 7200, attempts: 0, last_error: null, state: 'scheduled' });
      expect(Date.parse(policies[0]!.next_rotation_at)).toBe(s.clock.now().getTime() + 7_200_000);
    }
    const failed = (await auditActions()).filter((e) => e.action === 'secrets:kv-rotate' && e.outcome === 'failed');
    expect(failed.at(-1)).toMatchObject({ details: { path, attempts: 1, retry_scheduled: false } });
  });

  it.each([
    [{ rotation_period: '-1h' }, 'rotation_period'],
    [{ rotation_period: -5 }, 'rotation_period'],
    [{ rotation_period: '2s' }, 'rotation_period'],
    [{ rotation_period: '100000d' }, 'rotation_period'],
    [{ rotation_period: 'soon' }, 'rotation_period'],
    [{ rotation_period: '1h', rotation_grace_period: '2h' }, 'rotation_grace_period may not exceed rotation_period'],
    [{ rotation_period: '1h', rotation_generator: { keys: { password: { length: 32, charset: 'alnum', symbols: true } } } }, 'unknown field "symbols"'],
    [{ rotation_period: '1h', rotation_generator: { keys: { password: { charset: 'emoji' } } } }, 'charset'],
    [{ rotation_period: '1h', rotation_generator: { keys: { password: { length: 4 } } } }, 'length'],
    [{ rotation_period: '1h', rotation_generator: { keys: { password: { length: 1e9 } } } }, 'length'],
    [{ rotation_period: '1h', rotation_generator: { keys: {} } }, 'keys'],
    [{ rotation_period: '1h', rotation_generator: { key: { password: {} } } }, 'unknown field "key"'],
    [{ rotation_period: '1h', rotation_generator: 'password' }, 'rotation_generator'],
  ])('refuses %j with a Vault error and changes nothing', async (body, message) => {
    await call('POST', '/v1/secret/data/strict', { data: { a: '1' } });
    await call('POST', '/v1/secret/metadata/strict', { rotation_period: '2h', max_versions: 5 });
    const before = (await call('GET', '/v1/secret/metadata/strict')).json().data;
    const res = await call('POST', '/v1/secret/metadata/strict', { ...body, max_versions: 7 });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toHaveLength(1);
    expect(res.json().errors[0]).toContain(message);
    expect((await call('GET', '/v1/secret/metadata/strict')).json().data).toEqual(before);
  });

  it('hands out event ids in order, reads the log by id (bounded for a replay), and trims it by age', async () => {
    const store = s.runtime.stores.rotation;
    const last = await store.lastEventId();
    const at = s.clock.now().toISOString();
    const ids: number[] = [];
    for (const path of ['log/a', 'log/b', 'log/c']) ids.push(await store.appendEvent({ tenant: 'other', kind: 'kv.written', mountPath: 'secret', path, version: 1, occurredAt: at, previousReadableUntil: null }));
    expect(ids).toEqual([last + 1, last + 2, last + 3]);
    const all = await store.eventsAfter(last, 100);
    expect(all.map((e) => [e.id, e.path])).toEqual([
      [last + 1, 'log/a'],
      [last + 2, 'log/b'],
      [last + 3, 'log/c'],
    ]);
    const [a, b, c] = ids;
    expect((await store.eventsAfter(a!, 1)).map((e) => e.id)).toEqual([b]);
    expect(await store.lastEventId()).toBe(c);
    expect((await store.tenantEventsAfter('other', 0, 100)).map((e) => e.path)).toEqual(['log/a', 'log/b', 'log/c']);
    expect((await store.tenantEventsAfter('other', a!, 100, b)).map((e) => e.path)).toEqual(['log/b']);
    const pruned = await store.pruneEvents(new Date(s.clock.now().getTime() + 1).toISOString(), 100_000);
    expect(pruned).toBeGreaterThanOrEqual(3);
    expect(await store.firstEventId()).toBeUndefined();
    // The head outlives the pruned log: ids are never reused, and a resume point below it is known lost.
    expect(await store.lastEventId()).toBe(c);
    expect(await store.appendEvent({ tenant: 'other', kind: 'kv.written', mountPath: 'secret', path: 'log/d', version: 1, occurredAt: at, previousReadableUntil: null })).toBe(c! + 1);
  });

  it('hands out event ids in commit order: a reader following the log misses none', async () => {
    const store = s.runtime.stores.rotation;
    let cursor = await store.lastEventId();
    const seen: number[] = [];
    const follow = async () => {
      for (const e of await store.eventsAfter(cursor, 1000)) {
        seen.push(e.id);
        cursor = e.id;
      }
    };
    let writing = true;
    const reader = (async () => {
      while (writing) {
        await follow();
        await new Promise((r) => setImmediate(r));
      }
    })();
    const at = s.clock.now().toISOString();
    // Concurrent transactions that keep working after their append, so that they would commit in
    // another order than they took ids if the ids were not handed out under the head's lock.
    const ids = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        s.runtime.transact(async (tx) => {
          const id = await tx.rotation.appendEvent({ tenant: 'other', kind: 'kv.written', mountPath: 'secret', path: `order/${i}`, version: 1, occurredAt: at, previousReadableUntil: null });
          for (let turn = 0; turn < (i * 7) % 5; turn++) await tx.rotation.lastEventId();
          return id;
        }),
      ),
    );
    writing = false;
    await reader;
    await follow();
    expect(seen).toEqual([...ids].sort((a, b) => a - b));
  });

  it('removes the policy with rotation_period 0 and with the secret', async () => {
    await call('POST', '/v1/secret/data/gone', { data: { a: '1' } });
    const orphanGrace = await call('POST', '/v1/secret/metadata/gone', { rotation_grace_period: '1m' });
    expect(orphanGrace.statusCode).toBe(400);
    expect(orphanGrace.json().errors[0]).toContain('rotation_period is required');
    await call('POST', '/v1/secret/metadata/gone', { rotation_period: '1h' });
    expect((await call('POST', '/v1/secret/metadata/gone', { rotation_period: 0 })).statusCode).toBe(204);
    expect((await call('GET', '/v1/secret/metadata/gone')).json().data.rotation_period).toBeUndefined();
    await call('POST', '/v1/secret/metadata/gone', { rotation_period: '1h' });
    expect((await call('DELETE', '/v1/secret/metadata/gone')).statusCode).toBe(204);
    expect(await s.runtime.stores.rotation.policy({ tenant: 'default', mount: (await s.runtime.stores.mounts.list('default'))[0]!.accessor, path: 'gone' })).toBeUndefined();
  });
});
