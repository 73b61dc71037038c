import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ENTRY_BYTES } from '../../src/audit/tiles.js';
import { TEST_DATABASES } from '../support/databases.js';
import { activateVersion } from '../support/policy-versions.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * No request can make an audit event larger than a C2SP entry bundle holds (65,535 bytes): a
 * decision batch whose logged requests carry ~450 KB of caller-controlled ids and context is
 * answered normally, and its event is stored shortened and marked, within the limit, and served
 * in its entry bundle.
 */

describe.each(TEST_DATABASES)('audit event size through the request path ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;

  beforeAll(async () => {
    s = await startTestServer({ database });
    admin = { authorization: `Bearer ${s.adminToken}` };
    await activateVersion(s, 'default', 'big', { 'policies.cedar': 'permit(principal, action, resource);' });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('answers a decision batch of ~450 KB of logged request data, and logs it shortened', async () => {
    const long = (c: string) => c.repeat(400);
    const requests = Array.from({ length: 100 }, (_, i) => ({
      principal: { type: 'User', id: `${long('\u0000')}${i}` },
      action: { type: 'Action', id: 'read' },
      resource: { type: 'Doc', id: long('d') },
      context: { note: long('😀'), n: i },
    }));
    const res = await s.app.inject({ method: 'POST', url: '/v1/authz/stores/big/batch', headers: admin, payload: { requests } });
    expect(res.statusCode).toBe(200);
    expect((res.json() as { results: unknown[] }).results).toHaveLength(100);

    await s.runtime.audit.flush();
    await s.runtime.audit.integrateAll();
    const items = (await s.runtime.stores.audit.listEvents('default', 0, 10_000)).items;
    const stored = items.find((e) => e.payload.includes('"authz:check"'));
    expect(stored).toBeDefined();
    expect(Buffer.byteLength(stored!.payload, 'utf8')).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    const event = JSON.parse(stored!.payload) as { outcome: string; details: { truncated?: boolean; original_bytes?: number; store?: string } };
    expect(event.outcome).toBe('success');
    expect(event.details).toMatchObject({ truncated: true, store: 'big' });
    expect(event.details.original_bytes).toBeGreaterThan(MAX_ENTRY_BYTES);

    // The tiles serve it like any other entry.
    await s.runtime.checkpointer.checkpoint();
    const bundle = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/000.p/' + String(items.filter((e) => e.leafIndex !== null).length), headers: admin });
    expect(bundle.statusCode).toBe(200);
  });
});
