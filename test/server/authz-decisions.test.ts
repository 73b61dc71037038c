import 'reflect-metadata';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { activateVersion, replaceEntities } from '../support/policy-versions.js';
import { type TestServer, startTestServer } from '../support/server.js';

const APP_POLICIES = {
  'app.cedar': [
    '@id("editors-write")',
    'permit (principal in Group::"editors", action == Action::"write", resource);',
    '@id("anyone-reads")',
    'permit (principal, action == Action::"read", resource);',
    '@id("no-secret-reads")',
    'forbid (principal, action == Action::"read", resource) when { resource has secret && resource.secret };',
    '@id("office-hours")',
    'permit (principal, action == Action::"print", resource) when { context.hour < 18 };',
  ].join('\n'),
};
const APP_SCHEMA = `
entity Group;
entity User in [Group];
entity Doc = { secret?: Bool };
action read, write, print appliesTo { principal: User, resource: Doc, context: { hour?: Long } };
`;

const alice = { type: 'User', id: 'alice' };
const bob = { type: 'User', id: 'bob' };
const doc = { type: 'Doc', id: 'd1' };
const act = (id: string) => ({ type: 'Action', id });
const editorsAlice = [
  { uid: alice, attrs: {}, parents: [{ type: 'Group', id: 'editors' }] },
  { uid: { type: 'Group', id: 'editors' }, attrs: {}, parents: [] },
];

interface Answer {
  decision: 'allow' | 'deny';
  reasons: string[];
  errors: string[];
  deny_kind?: 'forbid' | 'no_permit';
  policy_version: number;
  entity_revision: number;
  decision_id: string;
}

describe.each(TEST_DATABASES)('decision API ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  let acmeAdmin: Record<string, string>;

  const post = (url: string, payload: unknown, headers = admin) => s.app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> });
  const check = (payload: unknown, store = 'app', headers = admin) => post(`/v1/authz/stores/${store}/check`, payload, headers);
  const lastEvent = async (tenant = 'default') => {
    await s.runtime.audit.flush();
    const items = (await s.runtime.stores.audit.listEvents(tenant, 0, 10_000)).items;
    return JSON.parse(items[items.length - 1]!.payload) as { details?: { decisions: string[] } & Record<string, unknown> } & Record<string, unknown>;
  };
  const expectProblem = (res: LightMyRequestResponse, status: number, code: string) => {
    expect({ status: res.statusCode, code: (res.json() as { code: string }).code }).toEqual({ status, code });
  };

  beforeAll(async () => {
    s = await startTestServer({ database });
    admin = { authorization: `Bearer ${s.adminToken}` };
    await activateVersion(s, 'default', 'app', APP_POLICIES, APP_SCHEMA);
    expect((await post('/v1/tenants', { name: 'acme' })).statusCode).toBe(201);
    const minted = await post('/v1/tokens', { policies: ['admin'], ttl: '1h' }, { ...admin, 'x-rampart-tenant': 'acme' });
    acmeAdmin = { authorization: `Bearer ${(minted.json() as { token: string }).token}` };
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('allows with the determining policies, the version and a fresh decision id', async () => {
    const a = (await check({ principal: alice, action: act('write'), resource: doc, entities: editorsAlice })).json() as Answer;
    const b = (await check({ principal: alice, action: act('write'), resource: doc, entities: editorsAlice })).json() as Answer;
    expect(a).toMatchObject({ decision: 'allow', reasons: ['editors-write'], errors: [], policy_version: 1, entity_revision: 0 });
    expect(a.deny_kind).toBeUndefined();
    expect(a.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.decision_id).not.toBe(a.decision_id);
  });

  it('tells a forbid from the absence of a permit', async () => {
    const forbid = (await check({ principal: bob, action: act('read'), resource: doc, entities: [{ uid: doc, attrs: { secret: true }, parents: [] }] })).json() as Answer;
    expect(forbid).toMatchObject({ decision: 'deny', deny_kind: 'forbid', reasons: ['no-secret-reads'] });
    const none = (await check({ principal: bob, action: act('write'), resource: doc })).json() as Answer;
    expect(none).toMatchObject({ decision: 'deny', deny_kind: 'no_permit', reasons: [] });
  });

  it('evaluates the context (ABAC)', async () => {
    expect(((await check({ principal: bob, action: act('print'), resource: doc, context: { hour: 9 } })).json() as Answer).decision).toBe('allow');
    expect(((await check({ principal: bob, action: act('print'), resource: doc, context: { hour: 20 } })).json() as Answer).decision).toBe('deny');
  });

  it('takes entities from the store, with inline ones replacing them', async () => {
    const revision = await replaceEntities(s, 'default', 'app', [
      { uid: bob, attrs: {}, parents: [{ type: 'Group', id: 'editors' }] },
      { uid: { type: 'Group', id: 'editors' }, attrs: {}, parents: [] },
    ]);
    const stored = (await check({ principal: bob, action: act('write'), resource: doc })).json() as Answer;
    expect(stored).toMatchObject({ decision: 'allow', entity_revision: revision });
    const overridden = (await check({ principal: bob, action: act('write'), resource: doc, entities: [{ uid: bob, attrs: {}, parents: [] }] })).json() as Answer;
    expect(overridden).toMatchObject({ decision: 'deny', deny_kind: 'no_permit' });
    await replaceEntities(s, 'default', 'app', []);
    expect(((await check({ principal: bob, action: act('write'), resource: doc })).json() as Answer).decision).toBe('deny');
  });

  it('refuses an action the schema does not declare, audited, nothing decided', async () => {
    const res = await check({ principal: alice, action: act('delete'), resource: doc });
    expectProblem(res, 400, 'authz.action_unknown');
    const event = await lastEvent();
    expect(event).toMatchObject({ request_id: res.headers['x-request-id'], outcome: 'invalid', error_code: 'authz.action_unknown' });
    expect(event.details).toBeUndefined();
  });

  it('refuses malformed entities: a parent cycle, a type the schema lacks, a missing uid', async () => {
    const cycle = [
      { uid: alice, attrs: {}, parents: [{ type: 'Group', id: 'g' }] },
      { uid: { type: 'Group', id: 'g' }, attrs: {}, parents: [{ type: 'Group', id: 'h' }] },
      { uid: { type: 'Group', id: 'h' }, attrs: {}, parents: [{ type: 'Group', id: 'g' }] },
    ];
    expectProblem(await check({ principal: alice, action: act('read'), resource: doc, entities: cycle }), 400, 'authz.request_invalid');
    const unknownType = [{ uid: { type: 'Robot', id: 'r' }, attrs: {}, parents: [] }];
    expectProblem(await check({ principal: alice, action: act('read'), resource: doc, entities: unknownType }), 400, 'authz.request_invalid');
    const wrongAttr = [{ uid: doc, attrs: { secret: 'yes' }, parents: [] }];
    expectProblem(await check({ principal: alice, action: act('read'), resource: doc, entities: wrongAttr }), 400, 'authz.request_invalid');
    expectProblem(await check({ principal: alice, action: act('read'), resource: doc, entities: [{ attrs: {} }] }), 400, 'request.invalid');
    expectProblem(await check({ principal: { type: 'User' }, action: act('read'), resource: doc }), 400, 'request.invalid');
    expectProblem(await check({ principal: alice, action: act('read'), resource: doc, extra: 1 }), 400, 'request.unknown_field');
  });

  it('answers 404 authz.store_empty for a store without an active version', async () => {
    expectProblem(await check({ principal: alice, action: act('read'), resource: doc }, 'nothing-here'), 404, 'authz.store_empty');
  });

  it('decides a batch in order, against one version; refuses more than 100 and names a bad request', async () => {
    const requests = [
      { principal: alice, action: act('write'), resource: doc, entities: editorsAlice },
      { principal: bob, action: act('write'), resource: doc },
      { principal: bob, action: act('read'), resource: doc },
    ];
    const res = await post('/v1/authz/stores/app/batch', { requests });
    expect(res.statusCode).toBe(200);
    const results = (res.json() as { results: Answer[] }).results;
    expect(results.map((r) => r.decision)).toEqual(['allow', 'deny', 'allow']);
    expect(new Set(results.map((r) => r.decision_id)).size).toBe(3);

    const tooMany = await post('/v1/authz/stores/app/batch', { requests: Array.from({ length: 101 }, () => requests[2]) });
    expectProblem(tooMany, 400, 'request.invalid');
    expectProblem(await post('/v1/authz/stores/app/batch', { requests: [] }), 400, 'request.invalid');
    const bad = await post('/v1/authz/stores/app/batch', { requests: [requests[2], { principal: bob, action: act('fly'), resource: doc }] });
    expectProblem(bad, 400, 'authz.action_unknown');
    expect((bad.json() as { detail: string }).detail).toMatch(/^request 2: /);
  });

  it('answers /v1/authz/check and /v1/authz/batch for the store in the body, "default" when none', async () => {
    const named = await post('/v1/authz/check', { store: 'app', principal: bob, action: act('read'), resource: doc });
    expect((named.json() as Answer).decision).toBe('allow');
    expect(await lastEvent()).toMatchObject({ action: 'authz:check', resource: { type: 'Rampart::PolicyStore', id: 'default/app' } });
    expectProblem(await post('/v1/authz/check', { principal: bob, action: act('read'), resource: doc }), 404, 'authz.store_empty');
    await activateVersion(s, 'default', 'default', { 'p.cedar': 'permit (principal, action, resource);' });
    expect(((await post('/v1/authz/check', { principal: bob, action: act('anything'), resource: doc })).json() as Answer).decision).toBe('allow');
    const batch = await post('/v1/authz/batch', { store: 'app', requests: [{ principal: bob, action: act('write'), resource: doc }] });
    expect((batch.json() as { results: Answer[] }).results[0]!.decision).toBe('deny');
  });

  it('logs every decision in the audit event: request, version, determining policies, decision id', async () => {
    const res = await check({ principal: bob, action: act('read'), resource: doc, context: { hour: 3 }, entities: [{ uid: doc, attrs: { secret: true }, parents: [] }] });
    const answer = res.json() as Answer;
    const event = await lastEvent();
    expect(event).toMatchObject({ request_id: res.headers['x-request-id'], action: 'authz:check', outcome: 'success', resource: { id: 'default/app' } });
    expect(event.details).toMatchObject({ store: 'app', decisions_total: 1, decisions_logged: 1 });
    expect(JSON.parse(event.details!.decisions[0]!)).toEqual({
      decision_id: answer.decision_id,
      decision: 'deny',
      deny_kind: 'forbid',
      policy_version: 1,
      entity_revision: answer.entity_revision,
      policies: ['no-secret-reads'],
      errors: [],
      request: { principal: bob, action: act('read'), resource: doc, context: { hour: 3 }, entities: [{ uid: doc, attrs: { secret: true }, parents: [] }] },
    });
  });

  it('previews a candidate: replays the logged decisions of the store and lists those that flip', async () => {
    // The active policies as the candidate: only the decision that relied on a stored entity
    // since removed flips (replays use the store's current entities).
    const same = (await post('/v1/authz/stores/app/preview', { policies: APP_POLICIES, schema: APP_SCHEMA })).json() as {
      replayed: number;
      flips: { request: { entities?: unknown }; before: { policies: string[] } }[];
    };
    expect(same.replayed).toBeGreaterThan(5);
    expect(same.flips).toHaveLength(1);
    expect(same.flips[0]).toMatchObject({ request: { principal: bob, action: act('write') }, before: { policies: ['editors-write'] } });
    const asked = (await check({ principal: bob, action: act('read'), resource: doc })).json() as Answer;
    expect(asked.decision).toBe('allow');
    const candidate = { 'app.cedar': '@id("only-editors")\npermit (principal in Group::"editors", action, resource);' };
    const res = await post('/v1/authz/stores/app/preview', { policies: candidate, schema: APP_SCHEMA, last: 1 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      replayed: 1,
      flipped: 1,
      flips: [
        {
          decision_id: asked.decision_id,
          time: expect.any(String),
          request: { principal: bob, action: act('read'), resource: doc },
          before: { decision: 'allow', policies: ['anyone-reads'], policy_version: 1 },
          after: { decision: 'deny', policies: [], deny_kind: 'no_permit' },
        },
      ],
      failed: [],
    });
    const event = await lastEvent();
    expect(event).toMatchObject({ action: 'authz:preview', details: { store: 'app', replayed: 1, flipped: 1, failed: 0 } });
    // A candidate whose schema drops an action cannot replay the decisions that asked for it.
    const narrower = await post('/v1/authz/stores/app/preview', { policies: candidate, schema: APP_SCHEMA.replace('read, ', ''), last: 1 });
    expect(narrower.json()).toMatchObject({ replayed: 1, flipped: 0, failed: [{ decision_id: asked.decision_id }] });
    expectProblem(await post('/v1/authz/stores/app/preview', { policies: 'permit (principal, action' }), 400, 'authz.candidate_invalid');
    expectProblem(await post('/v1/authz/stores/app/preview', { policies: 'permit (principal, action, resource);', last: 0 }), 400, 'request.invalid');
  });

  it("keeps tenants apart: acme cannot check against default's stores, and its own 'app' is its own", async () => {
    const cross = await check({ principal: bob, action: act('read'), resource: doc }, 'app', { ...acmeAdmin, 'x-rampart-tenant': 'default' });
    expectProblem(cross, 403, 'authz.denied');
    expect(cross.body).not.toContain('no-secret-reads');
    const crossBody = await post('/v1/authz/check', { store: 'app', principal: bob, action: act('read'), resource: doc }, { ...acmeAdmin, 'x-rampart-tenant': 'default' });
    expectProblem(crossBody, 403, 'authz.denied');
    expect(await lastEvent()).toMatchObject({ request_id: crossBody.headers['x-request-id'], tenant: 'default', outcome: 'denied', action: 'authz:check' });
    const bundle = await s.app.inject({ method: 'GET', url: '/v1/authz/stores/app/bundle', headers: { ...acmeAdmin, 'x-rampart-tenant': 'default' } });
    expectProblem(bundle, 403, 'authz.denied');
    // In its own tenant, "app" names acme's store, which has no version.
    expectProblem(await check({ principal: bob, action: act('read'), resource: doc }, 'app', acmeAdmin), 404, 'authz.store_empty');
    await activateVersion(s, 'acme', 'app', { 'a.cedar': 'forbid (principal, action, resource);' });
    expect((await check({ principal: bob, action: act('read'), resource: doc }, 'app', acmeAdmin)).json()).toMatchObject({ decision: 'deny', deny_kind: 'forbid', policy_version: 1 });
    expect(((await check({ principal: bob, action: act('read'), resource: doc })).json() as Answer).decision).toBe('allow');
  });

  it('serves the active bundle and long-polls for the next version', async () => {
    const first = await s.app.inject({ method: 'GET', url: '/v1/authz/stores/app/bundle', headers: admin });
    expect(first.statusCode).toBe(200);
    const bundle = first.json() as { version: number; entity_revision: number; policies: Record<string, string>; schema: string };
    expect(bundle).toMatchObject({ store: 'app', policies: APP_POLICIES, schema: APP_SCHEMA });
    const waiting = s.app.inject({
      method: 'GET',
      url: `/v1/authz/stores/app/bundle?wait=30&version=${bundle.version}&revision=${bundle.entity_revision}`,
      headers: admin,
    });
    const next = await activateVersion(s, 'default', 'app', { 'app.cedar': 'permit (principal, action == Action::"read", resource);' }, APP_SCHEMA);
    const answered = await waiting;
    expect(answered.statusCode).toBe(200);
    expect(answered.json()).toMatchObject({ version: next });
    // Holding an older version answers at once.
    const stale = await s.app.inject({ method: 'GET', url: `/v1/authz/stores/app/bundle?wait=30&version=${bundle.version}`, headers: admin });
    expect(stale.json()).toMatchObject({ version: next });
  });

  it('answers 503 audit.pushback rather than an unlogged decision', async () => {
    const shedding = await startTestServer({ database, auditMaxPending: 1 });
    try {
      await activateVersion(shedding, 'default', 'app', APP_POLICIES, APP_SCHEMA);
      const headers = { authorization: `Bearer ${shedding.adminToken}` };
      const responses = await Promise.all(
        Array.from({ length: 32 }, () => shedding.app.inject({ method: 'POST', url: '/v1/authz/stores/app/check', headers, payload: { principal: bob, action: act('write'), resource: doc } })),
      );
      const shed = responses.filter((r) => r.statusCode === 503);
      expect(shed.length).toBeGreaterThan(0);
      for (const r of shed) {
        expect(r.json()).toMatchObject({ code: 'audit.pushback' });
        expect(r.body).not.toContain('decision_id');
      }
      await shedding.runtime.audit.flush();
      const logged = new Set(
        (await shedding.runtime.stores.audit.listEvents('default', 0, 1000)).items.map((e) => (JSON.parse(e.payload) as { request_id: string }).request_id),
      );
      for (const r of responses.filter((x) => x.statusCode === 200)) expect(logged.has(String(r.headers['x-request-id']))).toBe(true);
    } finally {
      await shedding.close();
    }
  }, 60_000);
});
