import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CedarAuthorizer } from '../../src/authz/cedar-authorizer.js';
import { CedarWasmEvaluator } from '../../src/authz/cedar-wasm-evaluator.js';
import { DecisionCache } from '../../src/authz/decision-cache.js';
import { decisionLogDetails, loggedDecisions } from '../../src/authz/decision-log.js';
import { type CheckRequest, type Decision, DecisionService } from '../../src/authz/decisions.js';
import type { EntityJson, PolicyEvaluator } from '../../src/authz/evaluator.js';
import { schemaActions } from '../../src/authz/schema-actions.js';
import { policyHash } from '../../src/authz/seed-policies.js';
import type { PolicyVersionRecord } from '../../src/authz/store.js';
import { ManualClock } from '../../src/core/clock.js';
import { resolveServerConfig } from '../../src/core/config.js';
import type { Principal } from '../../src/identity/principal.js';

/** Policy versions and entities held in memory, as the lifecycle would store them. */
function memoryStores() {
  const active = new Map<string, PolicyVersionRecord>();
  const entities = new Map<string, { revision: number; entities: EntityJson[] }>();
  const reads = { policies: 0 };
  return {
    reads,
    activate(tenant: string, store: string, version: number, policies: Record<string, string>, schema: string | null = null) {
      active.set(`${tenant}/${store}`, {
        tenant, store, version, hash: policyHash(policies, schema), policies, schema, status: 'active', author: 't', message: '', createdAt: '',
      });
    },
    setEntities(tenant: string, store: string, list: EntityJson[]) {
      const revision = (entities.get(`${tenant}/${store}`)?.revision ?? 0) + 1;
      entities.set(`${tenant}/${store}`, { revision, entities: list });
    },
    policies: {
      active: async (tenant: string, store: string) => {
        reads.policies++;
        return active.get(`${tenant}/${store}`);
      },
    },
    entities: { entities: async (tenant: string, store: string) => entities.get(`${tenant}/${store}`) ?? { revision: 0, entities: [] } },
  };
}

const RBAC = {
  'rbac.cedar': [0, 1, 2, 3].map((r) => `@id("r${r}")\npermit (principal in Role::"r${r}", action == Action::"a${r}", resource);`).join('\n') + '\n@id("no-x")\nforbid (principal, action, resource) when { context has x && context.x };',
};

const requestArb = fc.record({
  user: fc.integer({ min: 0, max: 3 }),
  role: fc.integer({ min: 0, max: 4 }),
  action: fc.integer({ min: 0, max: 3 }),
  x: fc.option(fc.boolean(), { nil: undefined }),
});
const toRequest = (r: { user: number; role: number; action: number; x: boolean | undefined }): CheckRequest => ({
  principal: { type: 'User', id: `u${r.user}` },
  action: { type: 'Action', id: `a${r.action}` },
  resource: { type: 'Doc', id: 'd' },
  context: r.x === undefined ? {} : { x: r.x },
  entities: [
    { uid: { type: 'User', id: `u${r.user}` }, attrs: {}, parents: [{ type: 'Role', id: `r${r.role}` }] },
    { uid: { type: 'Role', id: `r${r.role}` }, attrs: {}, parents: [] },
  ],
});
const essence = (d: Decision) => ({ decision: d.decision, reasons: d.reasons, errors: d.errors, denyKind: d.denyKind, policyVersion: d.policyVersion });

describe('DecisionService', () => {
  it('answers from its cache exactly what the evaluator answers (property)', async () => {
    const m = memoryStores();
    m.activate('t', 's', 1, RBAC);
    const evaluator = new CedarWasmEvaluator();
    const cached = new DecisionService({ policies: m.policies, entities: m.entities, evaluator });
    const uncached = new DecisionService({ policies: m.policies, entities: m.entities, evaluator, cacheSize: 0 });
    const prepared = evaluator.prepare({ policies: RBAC });
    await fc.assert(
      fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 20 }), async (rs) => {
        for (const r of [...rs, ...rs]) {
          const request = toRequest(r);
          const a = await cached.check('t', 's', request);
          const b = await uncached.check('t', 's', request);
          expect(essence(a)).toEqual(essence(b));
          const direct = evaluator.isAuthorized(prepared, { ...request, context: request.context!, entities: request.entities! });
          expect(a.decision).toBe(direct.decision);
          expect(a.reasons).toEqual(direct.reasons);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('keeps a loaded version until invalidated, then reads the store again', async () => {
    const m = memoryStores();
    m.activate('t', 's', 1, { 'p.cedar': 'permit (principal, action, resource);' });
    const service = new DecisionService({ policies: m.policies, entities: m.entities, evaluator: new CedarWasmEvaluator(), clock: new ManualClock() });
    const ask: CheckRequest = { principal: { type: 'U', id: 'a' }, action: { type: 'Action', id: 'r' }, resource: { type: 'D', id: 'd' } };
    expect((await service.check('t', 's', ask)).decision).toBe('allow');
    m.activate('t', 's', 2, { 'p.cedar': 'forbid (principal, action, resource);' });
    expect((await service.check('t', 's', ask)).policyVersion).toBe(1);
    expect(m.reads.policies).toBe(1);
    service.invalidate('other-tenant');
    expect((await service.check('t', 's', ask)).policyVersion).toBe(1);
    service.invalidate('t');
    expect(await service.check('t', 's', ask)).toMatchObject({ decision: 'deny', denyKind: 'forbid', policyVersion: 2 });
  });

  it('does not keep a load that was in flight when the tenant was invalidated', async () => {
    const m = memoryStores();
    m.activate('t', 's', 1, { 'p.cedar': 'permit (principal, action, resource);' });
    const service = new DecisionService({ policies: m.policies, entities: m.entities, evaluator: new CedarWasmEvaluator(), clock: new ManualClock() });
    const ask: CheckRequest = { principal: { type: 'U', id: 'a' }, action: { type: 'Action', id: 'r' }, resource: { type: 'D', id: 'd' } };
    const inFlight = service.check('t', 's', ask);
    m.activate('t', 's', 2, { 'p.cedar': 'forbid (principal, action, resource);' });
    service.invalidate('t');
    const after = service.check('t', 's', ask);
    expect((await inFlight).policyVersion).toBe(1);
    expect((await after).policyVersion).toBe(2);
  });

  it('reads the store again once the loaded state is older than maxAgeMs (changes made by another replica)', async () => {
    const m = memoryStores();
    m.activate('t', 's', 1, { 'p.cedar': 'permit (principal, action, resource);' });
    const clock = new ManualClock(0);
    const evaluator = new CedarWasmEvaluator();
    let prepares = 0;
    const counting: PolicyEvaluator = {
      name: 'counting',
      prepare: (set) => (prepares++, evaluator.prepare(set)),
      isAuthorized: (p, r) => evaluator.isAuthorized(p, r),
      validate: (set, schema) => evaluator.validate(set, schema),
    };
    const service = new DecisionService({ policies: m.policies, entities: m.entities, evaluator: counting, clock, maxAgeMs: 1000 });
    const ask: CheckRequest = { principal: { type: 'U', id: 'a' }, action: { type: 'Action', id: 'r' }, resource: { type: 'D', id: 'd' } };
    expect((await service.check('t', 's', ask)).policyVersion).toBe(1);
    clock.advance(1000);
    // Unchanged: read again, but the prepared set is kept.
    expect((await service.check('t', 's', ask)).policyVersion).toBe(1);
    expect({ reads: m.reads.policies, prepares }).toEqual({ reads: 2, prepares: 1 });
    m.activate('t', 's', 2, { 'p.cedar': 'forbid (principal, action, resource);' });
    clock.advance(999);
    expect((await service.check('t', 's', ask)).policyVersion).toBe(1);
    clock.advance(1);
    expect(await service.check('t', 's', ask)).toMatchObject({ decision: 'deny', policyVersion: 2 });
    expect(prepares).toBe(2);
  });

  it('wakes change waiters on invalidation, and times out otherwise', async () => {
    const m = memoryStores();
    const service = new DecisionService({ policies: m.policies, entities: m.entities, evaluator: new CedarWasmEvaluator() });
    const waiting = service.changed('t', 60_000);
    service.invalidate('t');
    expect(await waiting).toBe(true);
    const aborted = new AbortController();
    const cancelled = service.changed('t', 60_000, aborted.signal);
    aborted.abort();
    expect(await cancelled).toBe(false);
    expect(await service.changed('t', 1)).toBe(false);
  });

  it('refuses actions a schema does not declare, and knows those it does', async () => {
    const schema = 'namespace App { entity U; action read appliesTo { principal: U, resource: U }; }\naction "go" appliesTo { principal: App::U, resource: App::U };';
    expect([...schemaActions(schema)!].sort()).toEqual(['Action::"go"', 'App::Action::"read"']);
    expect(schemaActions('not a schema')).toBeUndefined();
    const m = memoryStores();
    m.activate('t', 's', 1, { 'p.cedar': 'permit (principal, action, resource);' }, schema);
    const service = new DecisionService({ policies: m.policies, entities: m.entities, evaluator: new CedarWasmEvaluator() });
    const u = { type: 'App::U', id: 'u' };
    expect((await service.check('t', 's', { principal: u, action: { type: 'App::Action', id: 'read' }, resource: u })).decision).toBe('allow');
    await expect(service.check('t', 's', { principal: u, action: { type: 'Action', id: 'read' }, resource: u })).rejects.toMatchObject({ code: 'authz.action_unknown' });
    await expect(service.check('t', 'none', { principal: u, action: { type: 'Action', id: 'go' }, resource: u })).rejects.toMatchObject({ code: 'authz.store_empty' });
  });
});

describe('DecisionCache', () => {
  it('is bounded, evicts the least recently used, and drops exactly one tenant on invalidate', () => {
    const cache = new DecisionCache<number>(3);
    cache.set('a', 'k1', 1);
    cache.set('a', 'k2', 2);
    cache.set('b', 'k1', 10);
    expect(cache.get('a', 'k1')).toBe(1); // k1 is now the most recent of a
    cache.set('a', 'k3', 3); // evicts a/k2
    expect(cache.size).toBe(3);
    expect(cache.get('a', 'k2')).toBeUndefined();
    expect(cache.get('b', 'k1')).toBe(10);
    cache.invalidate('a');
    expect(cache.size).toBe(1);
    expect(cache.get('a', 'k1')).toBeUndefined();
    expect(cache.get('b', 'k1')).toBe(10);
  });
});

describe('decision log', () => {
  const decided = (decision: 'allow' | 'deny', id: string) => ({
    request: { principal: { type: 'U', id }, action: { type: 'Action', id: 'r' }, resource: { type: 'D', id: 'd' } },
    decision: { decision, reasons: [], errors: [], denyKind: decision === 'deny' ? ('no_permit' as const) : undefined, policyVersion: 3, entityRevision: 0, decisionId: id },
  });

  it('logs every deny and the sampled share of allows', () => {
    const batch = [decided('allow', 'a1'), decided('deny', 'd1'), decided('allow', 'a2'), decided('deny', 'd2')];
    expect(decisionLogDetails('s', batch, 1).decisions_logged).toBe(4);
    const none = decisionLogDetails('s', batch, 0);
    expect(none).toMatchObject({ store: 's', decisions_total: 4, decisions_logged: 2 });
    expect(none.decisions.map((t) => JSON.parse(t).decision_id)).toEqual(['d1', 'd2']);
    const draws = [0.2, 0.7];
    const half = decisionLogDetails('s', batch, 0.5, () => draws.shift()!);
    expect(half.decisions.map((t) => JSON.parse(t).decision_id)).toEqual(['a1', 'd1', 'd2']);
  });

  it('reads entries back defensively', () => {
    const details = decisionLogDetails('s', [decided('deny', 'd1')], 1);
    const payload = JSON.stringify({ time: '2026-01-01T00:00:00.000Z', details: { ...details, decisions: [...details.decisions, 'not json', '{"decision":"maybe"}', 7] } });
    expect(loggedDecisions(payload, 's')).toMatchObject({ time: '2026-01-01T00:00:00.000Z', entries: [{ decision_id: 'd1', policy_version: 3, deny_kind: 'no_permit' }] });
    expect(loggedDecisions(payload, 'other').entries).toEqual([]);
    expect(loggedDecisions('', 's').entries).toEqual([]);
    expect(loggedDecisions('{', 's').entries).toEqual([]);
  });
});

describe('CedarAuthorizer', () => {
  it('sees a version activated elsewhere once its loaded set is older than maxAgeMs', async () => {
    const m = memoryStores();
    m.activate('t', 'rampart', 1, { 'p.cedar': 'permit (principal, action, resource);' });
    const clock = new ManualClock(0);
    const authorizer = new CedarAuthorizer({ policies: m.policies, evaluator: new CedarWasmEvaluator(), clock, maxAgeMs: 500 });
    const principal: Principal = { type: 'Rampart::Token', id: 'x', tenant: 't', roles: [], authMethod: 'token', displayName: '' };
    const ask = () => authorizer.authorize({ tenant: 't', principal, action: 'a', resource: { type: 'Rampart::Collection', id: 't/x' }, context: {} });
    expect(await ask()).toMatchObject({ decision: 'allow', policyVersion: 1 });
    m.activate('t', 'rampart', 2, { 'p.cedar': 'forbid (principal, action, resource);' });
    expect(await ask()).toMatchObject({ decision: 'allow', policyVersion: 1 });
    clock.advance(500);
    expect(await ask()).toMatchObject({ decision: 'deny', policyVersion: 2 });
  });
});

describe('CedarAuthorizer with a bounded evaluator', () => {
  it('decides correctly for more tenants than sets it keeps parsed', async () => {
    const m = memoryStores();
    const tenants = ['t0', 't1', 't2', 't3', 't4'];
    tenants.forEach((t, i) => m.activate(t, 'rampart', 1, { 'p.cedar': i % 2 === 0 ? 'permit (principal, action, resource);' : 'forbid (principal, action, resource);' }));
    const authorizer = new CedarAuthorizer({ policies: m.policies, evaluator: new CedarWasmEvaluator({ maxResident: 2 }) });
    const principal: Principal = { type: 'Rampart::Token', id: 'x', tenant: 't0', roles: [], authMethod: 'token', displayName: '' };
    for (let round = 0; round < 3; round++) {
      for (const [i, tenant] of tenants.entries()) {
        const d = await authorizer.authorize({ tenant, principal, action: 'a', resource: { type: 'Rampart::Collection', id: `${tenant}/x` }, context: { n: round } });
        expect(d.decision).toBe(i % 2 === 0 ? 'allow' : 'deny');
      }
    }
  });
});

describe('authz_decision_log_allow_sample', () => {
  it('defaults to 1, is read from a flag or the environment, and refuses anything outside 0..1', () => {
    expect(resolveServerConfig({}, {}).authzDecisionLogAllowSample).toBe(1);
    expect(resolveServerConfig({}, { RAMPART_AUTHZ_DECISION_LOG_ALLOW_SAMPLE: '0.25' }).authzDecisionLogAllowSample).toBe(0.25);
    expect(resolveServerConfig({ authzDecisionLogAllowSample: '0' }, {}).authzDecisionLogAllowSample).toBe(0);
    for (const bad of ['', ' ', '1.5', '-0.1', '10%', 'all']) {
      expect(() => resolveServerConfig({ authzDecisionLogAllowSample: bad }, {}), bad).toThrow(/allow sample must be a number from 0 to 1/);
    }
  });
});
