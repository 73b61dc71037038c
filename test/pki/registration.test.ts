import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ManualClock } from '../../src/core/clock.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Registration entries over the API: validation (trust domain, selector syntax, TTL), paging,
 * tenant scoping, and an audit event for every answer, refusals included.
 */
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = (r: LightMyRequestResponse) => r.json() as Record<string, unknown>;
const TD = 'spiffe://default.rampart.local';
const AGENT = `${TD}/rampart/agent/join_token/jt_abc`;

describe.each(TEST_DATABASES)('registration entries ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  let acmeAdmin: Record<string, string>;

  beforeAll(async () => {
    s = await startTestServer({ database, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
    admin = bearer(s.adminToken);
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin, payload: { name: 'acme' } });
    const acme = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { ...admin, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } });
    acmeAdmin = bearer(json(acme).token as string);
  });
  afterAll(async () => {
    await s?.close();
  });

  const create = (headers: Record<string, string>, payload: Record<string, unknown>) => s.app.inject({ method: 'POST', url: '/v1/pki/registrations', headers, payload });
  const entryCount = async () => Number((await s.runtime.database.db.selectFrom('pki_registrations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const auditOf = async (r: LightMyRequestResponse) => {
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(20).execute();
    return rows.map((row) => JSON.parse(row.payload) as Record<string, unknown>).find((e) => e.request_id === r.headers['x-request-id']);
  };

  it('creates, reads, lists and deletes an entry, auditing each', async () => {
    const r = await create(admin, { spiffe_id: `${TD}/ns/pay/sa/api`, parent: AGENT, selectors: ['unix:uid:1000', 'k8s:sa:pay/api', 'k8s:sa:pay/api'], dns_names: ['api.pay.svc'], ttl: '10m' });
    expect(r.statusCode).toBe(201);
    const entry = json(r);
    expect(entry).toMatchObject({ spiffe_id: `${TD}/ns/pay/sa/api`, parent: AGENT, selectors: ['k8s:sa:pay/api', 'unix:uid:1000'], dns_names: ['api.pay.svc'], ttl_seconds: 600 });
    expect(await auditOf(r)).toMatchObject({ action: 'pki:registration-create', outcome: 'success', details: { registration_id: entry.id } });

    const got = await s.app.inject({ method: 'GET', url: `/v1/pki/registrations/${String(entry.id)}`, headers: admin });
    expect(json(got)).toEqual(entry);
    const second = json(await create(admin, { spiffe_id: `${TD}/ns/web`, parent: 'k8s:cluster:prod', selectors: ['k8s:ns:web'] }));
    const page1 = json(await s.app.inject({ method: 'GET', url: '/v1/pki/registrations?limit=1', headers: admin }));
    expect((page1.items as unknown[]).length).toBe(1);
    const page2 = json(await s.app.inject({ method: 'GET', url: `/v1/pki/registrations?limit=1&cursor=${String(page1.next_cursor)}`, headers: admin }));
    expect([...(page1.items as { id: string }[]), ...(page2.items as { id: string }[])].map((e) => e.id).sort()).toEqual([entry.id, second.id].sort());

    // The same SPIFFE ID, parent and selectors (in any order) again: refused, as SPIRE does.
    const dup = await create(admin, { spiffe_id: `${TD}/ns/pay/sa/api`, parent: AGENT, selectors: ['unix:uid:1000', 'k8s:sa:pay/api'] });
    expect({ status: dup.statusCode, code: json(dup).code }).toEqual({ status: 409, code: 'pki.registration_exists' });
    expect(await auditOf(dup)).toMatchObject({ outcome: 'invalid', error_code: 'pki.registration_exists' });
    // Another tenant sees none of it.
    expect((await s.app.inject({ method: 'GET', url: `/v1/pki/registrations/${String(entry.id)}`, headers: acmeAdmin })).statusCode).toBe(404);
    expect(json(await s.app.inject({ method: 'GET', url: '/v1/pki/registrations', headers: acmeAdmin })).items).toEqual([]);
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/pki/registrations/${String(entry.id)}`, headers: acmeAdmin })).statusCode).toBe(404);

    const del = await s.app.inject({ method: 'DELETE', url: `/v1/pki/registrations/${String(entry.id)}`, headers: admin });
    expect(del.statusCode).toBe(204);
    expect(await auditOf(del)).toMatchObject({ action: 'pki:registration-delete', outcome: 'success' });
    const again = await s.app.inject({ method: 'DELETE', url: `/v1/pki/registrations/${String(entry.id)}`, headers: admin });
    expect({ status: again.statusCode, code: json(again).code }).toEqual({ status: 404, code: 'pki.registration_not_found' });
  });

  it.each([
    ['an ID in another trust domain', { spiffe_id: 'spiffe://acme.rampart.local/ns/pay', parent: AGENT, selectors: ['unix:uid:1'] }, 403, 'pki.spiffe_id_forbidden'],
    ['a parent in another trust domain', { spiffe_id: `${TD}/ns/pay`, parent: 'spiffe://acme.rampart.local/agent', selectors: ['unix:uid:1'] }, 403, 'pki.spiffe_id_forbidden'],
    ['a trust-domain ID', { spiffe_id: TD, parent: AGENT, selectors: ['unix:uid:1'] }, 400, 'pki.spiffe_id_invalid'],
    ['a malformed ID', { spiffe_id: `${TD}/a/../b`, parent: AGENT, selectors: ['unix:uid:1'] }, 400, 'pki.spiffe_id_invalid'],
    ['an entry that is its own parent', { spiffe_id: AGENT, parent: AGENT, selectors: ['unix:uid:1'] }, 400, 'pki.spiffe_id_invalid'],
    ['a selector without a type', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['uid1000'] }, 400, 'pki.selector_invalid'],
    ['a selector with an empty value', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['unix:'] }, 400, 'pki.selector_invalid'],
    ['a selector with a space', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['k8s:sa:pay api'] }, 400, 'pki.selector_invalid'],
    ['an upper-case selector type', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['K8S:ns:pay'] }, 400, 'pki.selector_invalid'],
    ['a malformed selector parent', { spiffe_id: `${TD}/ns/pay`, parent: 'node-1', selectors: ['unix:uid:1'] }, 400, 'pki.selector_invalid'],
    ['no selectors', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: [] }, 400, 'request.invalid'],
    ['a TTL over the maximum', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['unix:uid:1'], ttl: '25h' }, 400, 'pki.ttl_invalid'],
    ['a TTL under a minute', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['unix:uid:1'], ttl: '30s' }, 400, 'pki.ttl_invalid'],
    ['a bad DNS name', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['unix:uid:1'], dns_names: ['bad name'] }, 400, 'pki.spiffe_id_invalid'],
    ['an unknown field', { spiffe_id: `${TD}/ns/pay`, parent: AGENT, selectors: ['unix:uid:1'], admin: true }, 400, 'request.unknown_field'],
  ])('refuses %s, storing nothing, audited', async (_what, payload, status, code) => {
    const before = await entryCount();
    const r = await create(admin, payload);
    expect({ status: r.statusCode, code: json(r).code }).toEqual({ status, code });
    expect(await entryCount()).toBe(before);
    expect(await auditOf(r)).toMatchObject({ outcome: status === 403 ? 'denied' : 'invalid', error_code: code });
  });
});
