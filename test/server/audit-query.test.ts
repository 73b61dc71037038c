import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

interface Item {
  leaf_index: number | null;
  event: { time: string; outcome: string; action: string | null; principal: { id: string } | null; request_id: string };
}

/** Audit queries: each filter narrows within the addressed tenant, pages cleanly, and never widens. */
describe.each(TEST_DATABASES)('audit event queries on $name', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  let reader: { token: string; accessor: string };
  let t0: string;
  let t1: string;

  async function events(query: string, headers = admin): Promise<Item[]> {
    const items: Item[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/audit/events?limit=2&${query}${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await s.app.inject({ method: 'GET', url, headers });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json() as { items: Item[]; next_cursor: string | null };
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor !== null);
    return items;
  }

  beforeAll(async () => {
    s = await startTestServer({ database });
    admin = { authorization: `Bearer ${s.adminToken}` };
    s.clock.advance(1000); // after the bootstrap event
    t0 = s.clock.now().toISOString();
    const created = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { policies: ['reader'] } });
    reader = created.json() as { token: string; accessor: string };
    s.clock.advance(60_000);
    t1 = s.clock.now().toISOString();
    for (let i = 0; i < 3; i++) await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { authorization: `Bearer ${reader.token}` } });
    await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { authorization: 'Bearer rpt.nope' } });
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin, payload: { name: 'acme' } });
    await s.runtime.audit.flush();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('filters by outcome', async () => {
    const denied = await events('outcome=denied');
    expect(denied).toHaveLength(3);
    expect(denied.every((i) => i.event.outcome === 'denied' && i.event.principal?.id === reader.accessor)).toBe(true);
    const unauthenticated = await events('outcome=unauthenticated');
    expect(unauthenticated.map((i) => i.event.principal)).toEqual([null]);
  });

  it('filters by principal, as a bare id or a Cedar reference', async () => {
    const bare = await events(`principal=${reader.accessor}`);
    const cedar = await events(`principal=${encodeURIComponent(`Rampart::Token::"${reader.accessor}"`)}`);
    expect(bare.map((i) => i.event.request_id)).toEqual(cedar.map((i) => i.event.request_id));
    expect(bare).toHaveLength(3);
  });

  it('filters by action and by resource', async () => {
    const creates = await events('action=token:create');
    expect(creates).toHaveLength(1);
    expect(creates[0]!.event.outcome).toBe('success');
    const tenants = await events(`resource=${encodeURIComponent('default/tenants')}`);
    expect(tenants.map((i) => i.event.action)).toEqual(['tenant:create']);
  });

  it('filters by time: since inclusive, until exclusive', async () => {
    const before = await events(`since=${t0}&until=${t1}`);
    expect(before.map((i) => i.event.action)).toEqual(['token:create']);
    const after = await events(`since=${t1}`);
    expect(after.every((i) => i.event.time >= t1)).toBe(true);
    // Every query is itself audited (audit:read); the rest is what beforeAll did after t1.
    expect(after.map((i) => i.event.action).filter((a) => a !== 'audit:read')).toEqual([
      'token:lookup-self',
      'token:lookup-self',
      'token:lookup-self',
      null,
      'tenant:create',
    ]);
  });

  it('combines filters and pages through exactly the matching events', async () => {
    const all = await events('');
    const expected = all.filter((i) => i.event.outcome === 'denied' && i.event.time >= t1);
    const got = await events(`outcome=denied&since=${t1}`);
    expect(got.map((i) => i.event.request_id)).toEqual(expected.map((i) => i.event.request_id));
  });

  it('never widens past the addressed tenant', async () => {
    const minted = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { ...admin, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } });
    const acme = { authorization: `Bearer ${(minted.json() as { token: string }).token}` };
    const mine = await events(`principal=${reader.accessor}`, acme);
    expect(mine).toEqual([]);
    const own = await events('', acme);
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((i) => (i.event as unknown as { tenant: string }).tenant === 'acme')).toBe(true);
  });

  it('refuses malformed filters with request.invalid', async () => {
    for (const q of ['since=yesterday', 'outcome=maybe', 'bogus=1']) {
      const res = await s.app.inject({ method: 'GET', url: `/v1/audit/events?${q}`, headers: admin });
      expect(res.statusCode, q).toBe(400);
      expect(['request.invalid', 'request.unknown_field']).toContain(res.json().code);
    }
  });
});

describe('POST /v1/audit/hash', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  const hash = (input: unknown, token: string) =>
    s.app.inject({ method: 'POST', url: '/v1/audit/hash', headers: { authorization: `Bearer ${token}` }, payload: { input } });

  it('returns the salted HMAC, the same for the same input and different otherwise', async () => {
    const a = (await hash('s3cr3t-value', s.adminToken)).json() as { hash: string };
    const b = (await hash('s3cr3t-value', s.adminToken)).json() as { hash: string };
    const c = (await hash('s3cr3t-valuf', s.adminToken)).json() as { hash: string };
    expect(a.hash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(c.hash).not.toBe(a.hash);
    expect(a.hash).toBe(s.runtime.auditHasher.hash('s3cr3t-value'));
  });

  it('never writes the input to the audit log', async () => {
    await hash('do-not-log-me', s.adminToken);
    await s.runtime.audit.flush();
    const page = await s.runtime.stores.audit.listEvents('default', 0, 1000);
    expect(page.items.some((e) => e.payload.includes('do-not-log-me'))).toBe(false);
    expect(page.items.some((e) => JSON.parse(e.payload).action === 'audit:hash')).toBe(true);
  });

  it('refuses a non-string input and principals without permission', async () => {
    expect((await hash(42, s.adminToken)).json().code).toBe('request.invalid');
    const created = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { policies: [] } });
    const res = await hash('x', (created.json() as { token: string }).token);
    expect(res.statusCode).toBe(403);
  });
});
