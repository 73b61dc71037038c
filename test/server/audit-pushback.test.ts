import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../support/server.js';

/** Under more load than the audit log can take, requests are shed, never answered unaudited. */
describe('audit pushback', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ auditMaxPending: 4 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('answers 503 audit.pushback with Retry-After, and every success has its event', async () => {
    const responses = await Promise.all(
      Array.from({ length: 64 }, () => s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { authorization: `Bearer ${s.adminToken}` } })),
    );
    const ok = responses.filter((r) => r.statusCode === 200);
    const shed = responses.filter((r) => r.statusCode === 503);
    expect(ok.length + shed.length).toBe(64);
    expect(ok.length).toBeGreaterThan(0);
    expect(shed.length).toBeGreaterThan(0);
    for (const r of shed) {
      expect(r.json()).toMatchObject({ code: 'audit.pushback', status: 503 });
      expect(r.headers['retry-after']).toBe('1');
      expect(r.body).not.toContain('accessor');
    }
    await s.runtime.audit.flush();
    const recorded = new Set(
      (await s.runtime.stores.audit.listEvents('default', 0, 1000)).items.map((e) => (JSON.parse(e.payload) as { request_id: string }).request_id),
    );
    for (const r of ok) expect(recorded.has(String(r.headers['x-request-id']))).toBe(true);
    for (const r of shed) expect(recorded.has(String(r.headers['x-request-id']))).toBe(false);
  });
});
