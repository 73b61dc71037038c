import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { seedPolicies } from '../../src/authz/seed-policies.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * The policy lifecycle over HTTP (docs/authz-policies.md): pushes judged before activation,
 * rejected versions that never activate, lockout protection, rollback, diffs and entities.
 */

const SCHEMA = `entity User in [Group] = { dept: String };
entity Group;
entity Doc = { owner: User };
action read appliesTo { principal: User, resource: Doc };
`;
const POLICIES = `@id("owner-reads")
permit (principal, action == Action::"read", resource) when { resource.owner == principal };
`;
const TESTS = `- name: the owner reads
  principal: { type: User, id: alice }
  action: { type: Action, id: read }
  resource: { type: Doc, id: d1 }
  entities:
    - { uid: { type: User, id: alice }, attrs: { dept: eng }, parents: [] }
    - { uid: { type: Doc, id: d1 }, attrs: { owner: { __entity: { type: User, id: alice } } }, parents: [] }
  expect: allow
  reasons: [owner-reads]
- name: another user does not
  principal: { type: User, id: bob }
  action: { type: Action, id: read }
  resource: { type: Doc, id: d1 }
  entities:
    - { uid: { type: User, id: bob }, attrs: { dept: eng }, parents: [] }
    - { uid: { type: User, id: alice }, attrs: { dept: eng }, parents: [] }
    - { uid: { type: Doc, id: d1 }, attrs: { owner: { __entity: { type: User, id: alice } } }, parents: [] }
  expect: deny
`;

describe.each(TEST_DATABASES)('policy stores over HTTP ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  const put = (store: string, payload: unknown) => s.app.inject({ method: 'PUT', url: `/v1/authz/stores/${store}/policies`, headers: admin, payload: payload as object });
  const get = (url: string) => s.app.inject({ method: 'GET', url, headers: admin });
  const statuses = async (store: string) =>
    ((await get(`/v1/authz/stores/${store}/versions`)).json() as { items: { version: number; status: string }[] }).items.map((v) => [v.version, v.status]);
  /** The newest audit event of an action. */
  const lastEvent = async (action: string) => {
    const events = (await get(`/v1/audit/events?limit=999&action=${encodeURIComponent(action)}`)).json() as { items: { event: Record<string, unknown> }[] };
    return events.items.at(-1)?.event ?? {};
  };

  beforeAll(async () => {
    s = await startTestServer({ database });
    admin = { authorization: `Bearer ${s.adminToken}` };
  });
  afterAll(async () => s?.close());

  it('creates an application store by pushing to it, with schema and tests', async () => {
    const res = await put('docs', { policies: { 'main.cedar': POLICIES }, schema: SCHEMA, tests: { 'tests.yaml': TESTS }, message: 'first' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ version: 1, status: 'active', message: 'first', author: expect.stringMatching(/^Rampart::Token::/) });
    const stores = (await get('/v1/authz/stores')).json() as { items: { store: string; active_version: number | null }[] };
    expect(stores.items).toEqual(
      expect.arrayContaining([
        { store: 'docs', active_version: 1, latest_version: 1 },
        { store: 'rampart', active_version: 1, latest_version: 1 },
      ]),
    );
  });

  it('rejects a syntax error with file, line and column, stores it rejected and keeps the active version', async () => {
    const res = await put('docs', { policies: { 'main.cedar': POLICIES, 'bad.cedar': 'permit(principal, action, resource)\nwhen { 1 + };' }, schema: SCHEMA, message: 'broken' });
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const body = res.json() as { code: string; version: number; errors: { path: string; message: string }[] };
    expect(body.code).toBe('authz.policy_parse_failed');
    expect(body.version).toBe(2);
    expect(body.errors[0]!.path).toBe('bad.cedar:2:12');
    expect(await statuses('docs')).toEqual([
      [2, 'rejected'],
      [1, 'active'],
    ]);
    expect(await lastEvent('authz:push')).toMatchObject({ action: 'authz:push', outcome: 'invalid', error_code: 'authz.policy_parse_failed' });
  });

  it('rejects a policy that fails strict schema validation', async () => {
    const res = await put('docs', { policies: 'permit (principal, action == Action::"read", resource) when { principal.age > 3 };', schema: SCHEMA, message: 'typo' });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'authz.policy_invalid', version: 3 });
    expect((res.json() as { errors: { path: string }[] }).errors[0]!.path).toMatch(/^policies\.cedar:1:\d+$/);
    expect((await get('/v1/authz/stores/docs/versions/3')).json()).toMatchObject({ status: 'rejected', reasons: [expect.stringContaining('age')] });
  });

  it('rejects a version whose policy tests fail, and one whose tests are malformed', async () => {
    const allowAll = { policies: { 'main.cedar': 'permit (principal, action, resource);' }, schema: SCHEMA, tests: { 'tests.yaml': TESTS }, message: 'too open' };
    const res = await put('docs', allowAll);
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'authz.policy_tests_failed' });
    expect(JSON.stringify(res.json())).toContain('another user does not: expected deny, got allow');
    const malformed = await put('docs', { ...allowAll, tests: { 'tests.yaml': '- name: x\n  expect: maybe\n' } });
    expect(malformed.json()).toMatchObject({ code: 'authz.policy_tests_failed' });
    expect(JSON.stringify(malformed.json())).toContain('expect must be allow or deny');
    const active = await s.runtime.stores.policies.active('default', 'docs');
    expect(active?.version).toBe(1);
  });

  it('links templates into policies that validate, decide and are named by their link id', async () => {
    const templates = {
      'viewer.cedar': '@id("viewer")\npermit (principal == ?principal, action == Action::"read", resource == ?resource);\n',
      'template-links.json': JSON.stringify([{ id: 'bob-reads-d2', template: 'viewer', values: { '?principal': { type: 'User', id: 'bob' }, '?resource': { type: 'Doc', id: 'd2' } } }]),
    };
    const tests = `- name: the link grants
  principal: { type: User, id: bob }
  action: { type: Action, id: read }
  resource: { type: Doc, id: d2 }
  entities:
    - { uid: { type: User, id: bob }, attrs: { dept: ops }, parents: [] }
    - { uid: { type: Doc, id: d2 }, attrs: { owner: { __entity: { type: User, id: bob } } }, parents: [] }
  expect: allow
  reasons: [bob-reads-d2]
`;
    const res = await put('linked', { policies: templates, schema: SCHEMA, tests: { 'links.test.yaml': tests }, message: 'templates' });
    expect(res.statusCode, res.body).toBe(201);
    const unknownTemplate = await put('linked', {
      policies: { ...templates, 'template-links.json': JSON.stringify([{ id: 'x', template: 'nope', values: {} }]) },
      schema: SCHEMA,
      message: 'bad link',
    });
    expect(unknownTemplate.json()).toMatchObject({ code: 'authz.policy_parse_failed', errors: [{ message: expect.stringContaining('no template with @id("nope")') }] });
    const mistyped = await put('linked', {
      policies: { ...templates, 'template-links.json': JSON.stringify([{ id: 'x', template: 'viewer', values: { '?principal': { type: 'Robot', id: 'r' }, '?resource': { type: 'Doc', id: 'd' } } }]) },
      schema: SCHEMA,
      message: 'link of the wrong type',
    });
    expect(mistyped.json()).toMatchObject({ code: 'authz.policy_invalid' });
  });

  it('numbers concurrent pushes to one store apart, leaving exactly one active version', async () => {
    const pushes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => put('racing', { policies: `permit (principal, action, resource) when { ${i} == ${i} };`, message: `push ${i}` })),
    );
    expect(pushes.map((r) => r.statusCode)).toEqual(Array(6).fill(201));
    const numbers = pushes.map((r) => (r.json() as { version: number }).version).sort((a, b) => a - b);
    expect(numbers).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await statuses('racing')).filter(([, status]) => status === 'active')).toHaveLength(1);
  });

  it('refuses bad input before storing anything', async () => {
    const before = await s.runtime.stores.policies.latestVersion('default', 'docs');
    const cases: [unknown, number, string][] = [
      [{ policies: { 'a.txt': 'permit(principal, action, resource);' }, message: 'x' }, 400, 'request.unknown_field'],
      [{ policies: 'permit(principal, action, resource);' }, 400, 'request.invalid'],
      [{ policies: 'permit(principal, action, resource);', message: 'x', extra: 1 }, 400, 'request.unknown_field'],
    ];
    for (const [payload, status, code] of cases) {
      const res = await put('docs', payload);
      expect([res.statusCode, (res.json() as { code: string }).code]).toEqual([status, code]);
    }
    const manyFiles = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}.cedar`, 'permit (principal, action, resource);']));
    expect((await put('docs', { policies: manyFiles, message: 'x' })).json()).toMatchObject({ status: 413, code: 'authz.limit_exceeded' });
    const bad = await s.app.inject({ method: 'PUT', url: '/v1/authz/stores/Bad Name/policies', headers: admin, payload: { policies: 'x', message: 'x' } });
    expect(bad.statusCode).toBe(400);
    const rampartSchema = await put('rampart', { policies: seedPolicies('default'), schema: SCHEMA, message: 'x' });
    expect(rampartSchema.json()).toMatchObject({ code: 'authz.schema_fixed' });
    expect(await s.runtime.stores.policies.latestVersion('default', 'docs')).toBe(before);
  });

  it('shows a version with its diff against the previous one, and diffs any two', async () => {
    const v = (await put('docs', { policies: { 'main.cedar': POLICIES.replace('owner-reads', 'owner-may-read') }, schema: SCHEMA, tests: { 'tests.yaml': TESTS.replace('[owner-reads]', '[owner-may-read]') }, message: 'rename' })).json() as { version: number };
    const detail = (await get(`/v1/authz/stores/docs/versions/${v.version}`)).json() as { diff: { against: number; files: Record<string, string> }; policies: Record<string, string> };
    expect(detail.policies['main.cedar']).toContain('owner-may-read');
    expect(detail.diff.against).toBe(v.version - 1);
    const diff = (await get(`/v1/authz/stores/docs/diff?from=1&to=${v.version}`)).json() as { files: Record<string, string> };
    expect(Object.keys(diff.files).sort()).toEqual(['main.cedar', 'tests.yaml']);
    expect(diff.files['main.cedar']).toContain('-@id("owner-reads")\n+@id("owner-may-read")\n');
    expect((await get('/v1/authz/stores/docs/versions/99')).json()).toMatchObject({ code: 'authz.version_not_found' });
    expect((await get('/v1/authz/stores/nothing/versions')).json()).toMatchObject({ code: 'authz.store_not_found' });
  });

  it('rolls back as a new version with the old content, judged again, and audited', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/v1/authz/stores/docs/rollback', headers: admin, payload: { version: 1 } });
    expect(res.statusCode).toBe(201);
    const rolled = res.json() as { version: number; hash: string };
    const v1 = (await get('/v1/authz/stores/docs/versions/1')).json() as { hash: string; policies: unknown };
    expect(rolled.hash).toBe(v1.hash);
    expect((await s.runtime.stores.policies.active('default', 'docs'))?.version).toBe(rolled.version);
    expect(await lastEvent('authz:rollback')).toMatchObject({ action: 'authz:rollback', outcome: 'success', details: { rolled_back_to: 1, version: rolled.version } });
    const rollback = (store: string, version: number) => s.app.inject({ method: 'POST', url: `/v1/authz/stores/${store}/rollback`, headers: admin, payload: { version } });
    expect((await rollback('docs', 999)).json()).toMatchObject({ status: 404, code: 'authz.version_not_found' });
    expect((await rollback('nothing', 1)).json()).toMatchObject({ status: 404, code: 'authz.store_not_found' });
  });

  it('refuses a rampart push that would lock policy management out, and keeps the old set', async () => {
    const before = await s.runtime.stores.policies.active('default', 'rampart');
    const lockout = { policies: { 'rampart.cedar': 'permit (principal in Rampart::Role::"admin", action == Rampart::Action::"audit:read", resource);' }, message: 'oops' };
    const res = await put('rampart', lockout);
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'authz.lockout' });
    expect((await s.runtime.stores.policies.active('default', 'rampart'))?.version).toBe(before?.version);
    // The admin still has every right: the rejected version never took effect.
    expect((await get('/v1/authz/stores/rampart/versions')).statusCode).toBe(200);
    // Rolling back to the refused content is judged again, and refused again.
    const rejectedVersion = (res.json() as { version: number }).version;
    const rollback = await s.app.inject({ method: 'POST', url: '/v1/authz/stores/rampart/rollback', headers: admin, payload: { version: rejectedVersion } });
    expect(rollback.json()).toMatchObject({ status: 409, code: 'authz.lockout' });
    expect((await s.runtime.stores.policies.active('default', 'rampart'))?.version).toBe(before?.version);
  });

  it('validates rampart pushes strictly against the rampart schema', async () => {
    const typo = { policies: { 'rampart.cedar': `${seedPolicies('default')['rampart.cedar']}\npermit (principal, action == Rampart::Action::"authz:pusj", resource);\n` }, message: 'typo' };
    const res = await put('rampart', typo);
    expect(res.json()).toMatchObject({ code: 'authz.policy_invalid' });
  });

  it('makes a rampart activation effective for the very next request', async () => {
    const files = seedPolicies('default');
    const narrowed = {
      'rampart.cedar': `${files['rampart.cedar']}\n@id("no-audit-read")\nforbid (principal, action == Rampart::Action::"audit:read", resource);\n`,
    };
    const narrowing = await put('rampart', { policies: narrowed, message: 'no audit reads' });
    expect(narrowing.statusCode, narrowing.body).toBe(201);
    expect((await get('/v1/audit/events')).statusCode).toBe(403);
    const reseed = await s.app.inject({ method: 'POST', url: '/v1/authz/stores/rampart/reseed', headers: admin, payload: {} });
    expect(reseed.statusCode).toBe(201);
    expect((await get('/v1/audit/events')).statusCode).toBe(200);
  });

  it('replaces entities with a new revision and refuses unknown types, cycles and malformed ones', async () => {
    const entities = [
      { uid: { type: 'User', id: 'alice' }, attrs: { dept: 'eng' }, parents: [{ type: 'Group', id: 'eng' }] },
      { uid: { type: 'Group', id: 'eng' }, attrs: {}, parents: [] },
    ];
    const putEntities = (payload: unknown, store = 'docs') =>
      s.app.inject({ method: 'PUT', url: `/v1/authz/stores/${store}/entities`, headers: admin, payload: payload as object });
    const first = await putEntities(entities);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ revision: 1, count: 2 });
    expect((await putEntities(entities)).json()).toEqual({ revision: 2, count: 2 });

    const bad: [unknown, string][] = [
      [[{ uid: { type: 'Robot', id: 'r' }, attrs: {}, parents: [] }], 'authz.entities_invalid'],
      [[{ uid: { type: 'User', id: 'a' }, attrs: {}, parents: [] }], 'authz.entities_invalid'],
      [
        [
          { uid: { type: 'Group', id: 'a' }, attrs: {}, parents: [{ type: 'Group', id: 'b' }] },
          { uid: { type: 'Group', id: 'b' }, attrs: {}, parents: [{ type: 'Group', id: 'a' }] },
        ],
        'authz.entities_invalid',
      ],
      [[entities[1], entities[1]], 'authz.entities_invalid'],
      [[{ uid: 'User::"x"', attrs: {}, parents: [] }], 'request.invalid'],
      [{ not: 'an array' }, 'request.invalid'],
    ];
    for (const [payload, code] of bad) {
      const res = await putEntities(payload);
      expect((res.json() as { code: string }).code, JSON.stringify(payload)).toBe(code);
      expect(await lastEvent('authz:put-entities')).toMatchObject({ outcome: 'invalid', error_code: code });
    }
    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ uid: { type: 'Group', id: `g${i}` }, attrs: {}, parents: [] }));
    expect((await putEntities(tooMany)).json()).toMatchObject({ status: 413, code: 'authz.limit_exceeded' });
    expect((await get('/v1/authz/stores/docs/entities')).json()).toMatchObject({ revision: 2, entities });
    // Entities may precede the first push, so that its tests can use them.
    expect((await putEntities(entities, 'fresh')).json()).toEqual({ revision: 1, count: 2 });
    expect((await get('/v1/authz/stores/fresh/entities')).json()).toMatchObject({ revision: 1 });
    expect((await get('/v1/authz/stores/never/entities')).json()).toEqual({ revision: 0, entities: [] });
  });

  it('invalidates the authorizer after every committed change and before answering, and never for a refused one', async () => {
    const calls: string[] = [];
    const spy = vi.spyOn(s.runtime.authorizer, 'invalidate').mockImplementation((tenant) => void calls.push(tenant));
    try {
      const entities = await s.app.inject({ method: 'PUT', url: '/v1/authz/stores/docs/entities', headers: admin, payload: [] });
      expect(entities.statusCode).toBe(200);
      expect(calls).toEqual(['default']);
      expect((await put('docs', { policies: 'permit (principal, action, resource);', message: 'open' })).statusCode).toBe(201);
      expect((await s.app.inject({ method: 'POST', url: '/v1/authz/stores/docs/rollback', headers: admin, payload: { version: 1 } })).statusCode).toBe(201);
      expect(calls).toEqual(['default', 'default', 'default']);
      expect((await put('docs', { policies: 'permit (', message: 'broken' })).statusCode).toBe(422);
      expect(calls).toHaveLength(3);
    } finally {
      spy.mockRestore();
    }
  });

  it('keeps tenants apart: another tenant sees none of default\'s stores', async () => {
    expect((await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin, payload: { name: 'acme' } })).statusCode).toBe(201);
    const acme = { ...admin, 'x-rampart-tenant': 'acme' };
    const stores = (await s.app.inject({ method: 'GET', url: '/v1/authz/stores', headers: acme })).json() as { items: { store: string }[] };
    expect(stores.items.map((i) => i.store)).toEqual(['rampart']);
    expect((await s.app.inject({ method: 'GET', url: '/v1/authz/stores/docs/versions', headers: acme })).json()).toMatchObject({ code: 'authz.store_not_found' });
  });
});
