import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStreamParser, RampartApiError, RampartClient, type SecretUpdate, type StreamEvent, watchSecret } from '../../src/sdk/index.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * `GET /v1/secrets/events` and the SDK's `watchSecret` against a real listening server (HTTPS,
 * real Cedar, real store), with the manual clock: rotations happen when the test ticks the
 * scheduler, and events are read when it polls the hub, so nothing waits on a timer.
 */
let s: TestServer;
const clients: RampartClient[] = [];

function client(token: string, tenant?: string): RampartClient {
  const c = new RampartClient({ addr: s.addr!, token, caPem: s.runtime.trustBundlePem, ...(tenant ? { tenant } : {}) });
  clients.push(c);
  return c;
}

async function vault(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, token = s.adminToken, tenant?: string) {
  const res = await s.app.inject({
    method,
    url,
    headers: { 'x-vault-token': token, ...(tenant ? { 'x-rampart-tenant': tenant } : {}) },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
  if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.statusCode === 204 ? undefined : (res.json() as { data: Record<string, unknown>; auth: { client_token: string } });
}

async function tokenWith(hcl: string, name: string): Promise<string> {
  await vault('PUT', `/v1/sys/policy/${name}`, { policy: hcl });
  return (await vault('POST', '/v1/auth/token/create', { policies: [name], no_default_policy: false }))!.auth.client_token;
}

/** Collects the events of one stream; `until` resolves when an event matching `pred` arrived. */
async function subscribe(c: RampartClient, query: Record<string, string> = {}, headers: Record<string, string> = {}) {
  const seen: StreamEvent[] = [];
  const waiters: { pred: (e: StreamEvent) => boolean; resolve: () => void }[] = [];
  let res: IncomingMessage | undefined;
  const connected = new Promise<void>((resolve, reject) => {
    c.stream('/v1/secrets/events', { query, headers }).then((r) => {
      res = r;
      const parser = new EventStreamParser(
        (e) => {
          seen.push(e);
          for (const w of waiters.splice(0)) if (w.pred(e)) w.resolve();
            else waiters.push(w);
        },
        (comment) => comment === 'connected' && resolve(),
      );
      r.setEncoding('utf8').on('data', (chunk: string) => parser.push(chunk));
    }, reject);
  });
  await connected;
  return {
    seen,
    until: (pred: (e: StreamEvent) => boolean) =>
      new Promise<void>((resolve) => {
        if (seen.some(pred)) resolve();
        else waiters.push({ pred, resolve });
      }),
    close: () => res?.destroy(),
  };
}

const pathOf = (e: StreamEvent) => (JSON.parse(e.data) as { path: string }).path;

beforeAll(async () => {
  s = await startTestServer({ listen: true });
  await s.runtime.rotation.scheduler.stop();
  await vault('POST', '/v1/sys/mounts/secret', { type: 'kv' });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await s.close();
});

describe('GET /v1/secrets/events', () => {
  it('refuses a caller without read on sys/events/subscribe/secrets', async () => {
    const token = await tokenWith('path "secret/data/*" { capabilities = ["read"] }', 'reader-only');
    const err = await client(token).stream('/v1/secrets/events').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RampartApiError);
    expect(err).toMatchObject({ status: 403, code: 'authz.denied' });
  });

  it('sends a subscriber only the events of paths it may read', async () => {
    const watcher = await tokenWith(
      ['path "sys/events/subscribe/*" { capabilities = ["read"] }', 'path "secret/data/team/*" { capabilities = ["read"] }', 'path "secret/data/team/secret-plans" { capabilities = ["deny"] }'].join('\n'),
      'team-watcher',
    );
    const stream = await subscribe(client(watcher));
    await vault('POST', '/v1/secret/data/other/db', { data: { password: 'x' } });
    await vault('POST', '/v1/secret/data/team/secret-plans', { data: { plan: 'x' } });
    await vault('POST', '/v1/secret/data/team/app', { data: { password: 'y' } });
    await s.runtime.rotation.events.poll();
    // Events are sent in log order: when the last one arrived, the earlier ones were decided.
    await stream.until((e) => pathOf(e) === 'team/app');
    expect(stream.seen.map(pathOf)).toEqual(['team/app']);
    const event = JSON.parse(stream.seen[0]!.data) as Record<string, unknown>;
    expect(stream.seen[0]).toMatchObject({ event: 'kv.written' });
    expect(event).toEqual({ id: Number(stream.seen[0]!.id), kind: 'kv.written', mount: 'secret', path: 'team/app', version: 1, occurred_at: s.clock.now().toISOString(), previous_readable_until: null });
    // Never a value.
    expect(stream.seen[0]!.data).not.toContain('"y"');
    stream.close();
  });

  it("never sends another tenant's events", async () => {
    const created = await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name: 'acme' } });
    expect(created.statusCode).toBe(201);
    const acmeToken = (
      await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${s.adminToken}`, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } })
    ).json().token as string;
    await vault('POST', '/v1/sys/mounts/secret', { type: 'kv' }, acmeToken);
    const acme = await subscribe(client(acmeToken));
    const operator = await subscribe(client(s.adminToken));
    await vault('POST', '/v1/secret/data/default-only', { data: { v: '1' } });
    await vault('POST', '/v1/secret/data/acme-marker', { data: { v: '1' } }, acmeToken);
    await s.runtime.rotation.events.poll();
    await acme.until((e) => pathOf(e) === 'acme-marker');
    await operator.until((e) => pathOf(e) === 'default-only');
    expect(acme.seen.map(pathOf)).toEqual(['acme-marker']);
    expect(operator.seen.map(pathOf)).not.toContain('acme-marker');
    acme.close();
    operator.close();
  });

  it('is not shadowed by, and does not shadow, a KV mount named "secrets"', async () => {
    await vault('POST', '/v1/sys/mounts/secrets', { type: 'kv' });
    await vault('POST', '/v1/secrets/data/events', { data: { v: '1' } });
    expect((await vault('GET', '/v1/secrets/data/events'))!.data.data).toEqual({ v: '1' });
    const stream = await subscribe(client(s.adminToken), { mount: 'secrets' });
    await vault('POST', '/v1/secrets/data/events', { data: { v: '2' } });
    await s.runtime.rotation.events.poll();
    await stream.until((e) => pathOf(e) === 'events');
    expect(JSON.parse(stream.seen[0]!.data)).toMatchObject({ mount: 'secrets', path: 'events', version: 2 });
    stream.close();
  });

  it('resumes after Last-Event-ID, and asks for a resync when the events are gone', async () => {
    await vault('POST', '/v1/secret/data/resume', { data: { v: '1' } });
    const [first] = (await s.runtime.stores.rotation.tenantEventsAfter('default', 0, 10_000)).filter((e) => e.path === 'resume');
    await vault('POST', '/v1/secret/data/resume', { data: { v: '2' } });
    await vault('POST', '/v1/secret/data/resume', { data: { v: '3' } });
    const resumed = await subscribe(client(s.adminToken), { path: 'resume' }, { 'last-event-id': String(first!.id) });
    // The replay is sent before `connected`.
    expect(resumed.seen.map((e) => (JSON.parse(e.data) as { version: number }).version)).toEqual([2, 3]);
    resumed.close();

    s.clock.advance(2 * 3_600_000);
    await s.runtime.rotation.scheduler.tick(); // trims events older than an hour
    const stale = await subscribe(client(s.adminToken), { path: 'resume' }, { 'last-event-id': String(first!.id) });
    expect(stale.seen.map((e) => e.event)).toEqual(['resync']);
    stale.close();
  });
});

describe('watchSecret', () => {
  it('hands over the current value, each new version, and the previous one during its grace period', async () => {
    await vault('POST', '/v1/secret/data/svc/db', { data: { username: 'svc', password: 'first' } });
    const updates: SecretUpdate[] = [];
    let notify: () => void = () => undefined;
    const stop = await watchSecret(client(s.adminToken), { mount: 'secret', path: 'svc/db' }, (u) => {
      updates.push(u);
      notify();
    });
    const next = (count: number) =>
      new Promise<void>((resolve) => {
        notify = () => updates.length >= count && resolve();
        notify();
      });
    expect(updates).toEqual([{ version: 1, data: { username: 'svc', password: 'first' } }]);

    await vault('POST', '/v1/secret/data/svc/db', { data: { username: 'svc', password: 'second' } });
    await s.runtime.rotation.events.poll();
    await next(2);
    expect(updates[1]).toEqual({ version: 2, data: { username: 'svc', password: 'second' } });

    await vault('POST', '/v1/secret/metadata/svc/db', { rotation_period: '1h', rotation_grace_period: '5m', rotation_generator: { keys: { password: { length: 24 } } } });
    s.clock.advance(3_600_000);
    expect(await s.runtime.rotation.scheduler.tick()).toMatchObject({ rotated: 1 });
    await s.runtime.rotation.events.poll();
    await next(3);
    expect(updates[2]).toMatchObject({
      version: 3,
      data: { username: 'svc' },
      previous: { version: 2, data: { username: 'svc', password: 'second' }, readableUntil: new Date(s.clock.now().getTime() + 300_000).toISOString() },
    });
    expect(updates[2]!.data.password).toMatch(/^[A-Za-z0-9]{24}$/);
    await stop();
  });

  it('calls onRotationDue when the period ends without a generator, and sees the version the application writes', async () => {
    await vault('POST', '/v1/secret/data/svc/api-key', { data: { key: 'k1' } });
    await vault('POST', '/v1/secret/metadata/svc/api-key', { rotation_period: '10m', rotation_grace_period: '1m' });
    const updates: SecretUpdate[] = [];
    let onUpdate: () => void = () => undefined;
    let onDue: (version: number) => void = () => undefined;
    const due = new Promise<number>((resolve) => (onDue = resolve));
    const c = client(s.adminToken);
    const stop = await watchSecret(
      c,
      { mount: 'secret', path: 'svc/api-key' },
      (u) => {
        updates.push(u);
        onUpdate();
      },
      { onRotationDue: ({ version }) => onDue(version) },
    );
    s.clock.advance(600_000);
    expect(await s.runtime.rotation.scheduler.tick()).toMatchObject({ due: 1 });
    await s.runtime.rotation.events.poll();
    expect(await due).toBe(1);

    const written = new Promise<void>((resolve) => (onUpdate = () => updates.length === 2 && resolve()));
    await vault('POST', '/v1/secret/data/svc/api-key', { data: { key: 'k2' } });
    await s.runtime.rotation.events.poll();
    await written;
    expect(updates[1]).toEqual({ version: 2, data: { key: 'k2' }, previous: { version: 1, data: { key: 'k1' }, readableUntil: new Date(s.clock.now().getTime() + 60_000).toISOString() } });
    await stop();
  });

  it('calls onRotationDue at start when the secret is already due (the event went out while the application was down)', async () => {
    await vault('POST', '/v1/secret/data/svc/offline', { data: { key: 'k1' } });
    await vault('POST', '/v1/secret/metadata/svc/offline', { rotation_period: '10m' });
    s.clock.advance(600_000);
    await s.runtime.rotation.scheduler.tick();
    expect((await vault('GET', '/v1/secret/metadata/svc/offline'))!.data.rotation_state).toBe('due');
    const due: number[] = [];
    const stop = await watchSecret(client(s.adminToken), { mount: 'secret', path: 'svc/offline' }, () => undefined, { onRotationDue: ({ version }) => void due.push(version) });
    expect(due).toEqual([1]);
    await stop();
  });

  it('rejects when the secret cannot be read', async () => {
    const token = await tokenWith('path "sys/events/subscribe/*" { capabilities = ["read"] }', 'subscribe-only');
    await expect(watchSecret(client(token), { mount: 'secret', path: 'svc/db' }, () => undefined)).rejects.toMatchObject({ status: 403 });
  });

  it('reconnects after the stream is lost and catches up on what changed meanwhile', async () => {
    await vault('POST', '/v1/secret/data/svc/cache', { data: { v: 'a' } });
    const updates: SecretUpdate[] = [];
    let onUpdate: () => void = () => undefined;
    const errors: unknown[] = [];
    const stop = await watchSecret(
      client(s.adminToken),
      { mount: 'secret', path: 'svc/cache' },
      (u) => {
        updates.push(u);
        onUpdate();
      },
      { minBackoffMs: 1, maxBackoffMs: 5, onError: (e) => errors.push(e) },
    );
    // The server drops every stream (as a restart would); a change lands while the client is away.
    expect(s.runtime.rotation.events.subscribers).toBeGreaterThan(0);
    const caughtUp = new Promise<void>((resolve) => (onUpdate = () => updates.length === 2 && resolve()));
    for (const socket of trackedSockets) socket.destroy();
    await vault('POST', '/v1/secret/data/svc/cache', { data: { v: 'b' } });
    await caughtUp;
    expect(updates.map((u) => u.data.v)).toEqual(['a', 'b']);
    expect(errors.length).toBeGreaterThan(0);
    await stop();
  });
});

/** Server-side TLS sockets of the listening server, so a test can drop them as a restart would. */
const trackedSockets = new Set<Socket>();
beforeAll(() => {
  s.app.server.on('secureConnection', (socket: Socket) => trackedSockets.add(socket));
});
