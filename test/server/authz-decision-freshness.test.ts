import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Security regression: no stale decision after an acknowledged policy change. Decisions are
 * hammered concurrently (the same request, so the decision cache is hot, and requests that miss
 * it) while versions flip between "allow everything" and "deny everything" through the API (push
 * and rollback). Every decision asked after a change was acknowledged must be made by that
 * version or a later one, and must be the decision of the version it reports.
 */
const ALLOW = { 'p.cedar': '@id("allow-all")\npermit (principal, action, resource);' };
const DENY = { 'p.cedar': '@id("deny-all")\nforbid (principal, action, resource);' };
const FLIPS = 16;
const WORKERS = 12;

describe.each(TEST_DATABASES)('decision freshness under version flips ($name)', (database) => {
  let s: TestServer;
  let headers: Record<string, string>;

  beforeAll(async () => {
    s = await startTestServer({ database });
    headers = { authorization: `Bearer ${s.adminToken}` };
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('never answers with a version older than the last acknowledged change', async () => {
    const expected = new Map<number, 'allow' | 'deny'>();
    const push = async (policies: Record<string, string>, decision: 'allow' | 'deny', version: number) => {
      expected.set(version, decision);
      const res = await s.app.inject({ method: 'PUT', url: '/v1/authz/stores/app/policies', headers, payload: { policies, message: decision } });
      expect(res.statusCode).toBe(201);
      expect(res.json().version).toBe(version);
    };
    await push(ALLOW, 'allow', 1);
    await push(DENY, 'deny', 2);
    let acknowledged = 2;
    let flipping = true;
    let decided = 0;
    const stale: string[] = [];

    const worker = async (w: number) => {
      for (let i = 0; flipping; i++) {
        const floor = acknowledged;
        // Odd iterations vary the context: those miss the cache and load the store.
        const payload = {
          principal: { type: 'User', id: `u${w}` },
          action: { type: 'Action', id: 'read' },
          resource: { type: 'Doc', id: 'd' },
          context: i % 2 === 0 ? {} : { n: i },
        };
        const res = await s.app.inject({ method: 'POST', url: '/v1/authz/stores/app/check', headers, payload });
        expect(res.statusCode).toBe(200);
        const answer = res.json() as { decision: string; policy_version: number };
        decided++;
        if (answer.policy_version < floor) stale.push(`asked after v${floor} was acknowledged, answered by v${answer.policy_version}`);
        if (expected.get(answer.policy_version) !== answer.decision) stale.push(`v${answer.policy_version} answered ${answer.decision}`);
      }
    };
    const flipper = async () => {
      try {
        for (let k = 0; k < FLIPS; k++) {
          const to = k % 2 === 0 ? 1 : 2;
          const version = acknowledged + 1;
          expected.set(version, to === 1 ? 'allow' : 'deny');
          const res = await s.app.inject({ method: 'POST', url: '/v1/authz/stores/app/rollback', headers, payload: { version: to } });
          expect(res.statusCode).toBe(201);
          expect(res.json().version).toBe(version);
          acknowledged = version;
          // Let the workers ask a few times under this version (cached and not) before the next flip.
          const target = decided + 2 * WORKERS;
          while (decided < target) await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        flipping = false;
      }
    };
    await Promise.all([flipper(), ...Array.from({ length: WORKERS }, (_, w) => worker(w))]);
    expect(stale).toEqual([]);
    expect(decided).toBeGreaterThanOrEqual(2 * FLIPS * WORKERS);
    // And after the last acknowledgement, the last version's decision.
    const last = await s.app.inject({
      method: 'POST',
      url: '/v1/authz/stores/app/check',
      headers,
      payload: { principal: { type: 'User', id: 'u0' }, action: { type: 'Action', id: 'read' }, resource: { type: 'Doc', id: 'd' } },
    });
    expect(last.json()).toMatchObject({ policy_version: acknowledged, decision: expected.get(acknowledged) });
  }, 60_000);
});
