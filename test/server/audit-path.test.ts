import 'reflect-metadata';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { leafHash, rootFromLeafHashes, toHex } from '../../src/audit/merkle.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The audit half of the request path: one event per authenticated request, written before the
 * answer leaves (and inside the transaction of a state change), integrated into an RFC 6962 tree
 * whose root anyone can recompute from the payloads; and fail closed when the log cannot write.
 */

const utf8 = new TextEncoder();

interface AuditedEvent {
  readonly schema_version: number;
  readonly time: string;
  readonly tenant: string;
  readonly request_id: string;
  readonly source_ip: string;
  readonly principal: { type: string; id: string; tenant: string; auth_method: string } | null;
  readonly action: string | null;
  readonly resource: { type: string; id: string } | null;
  readonly outcome: string;
  readonly error_code: string | null;
  readonly http: { method: string; route: string; status: number } | null;
  readonly details?: Record<string, unknown>;
}

let s: TestServer;
let admin: Record<string, string>;
let adminAccessor: string;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function lastAuditId(): Promise<number> {
  const row = await s.runtime.database.db.selectFrom('audit_events').select((eb) => eb.fn.max('id').as('id')).executeTakeFirstOrThrow();
  return Number(row.id ?? 0);
}

async function eventsAfter(id: number): Promise<AuditedEvent[]> {
  const rows = await s.runtime.database.db.selectFrom('audit_events').select(['payload']).where('id', '>', id).orderBy('id').execute();
  return rows.map((r) => JSON.parse(r.payload) as AuditedEvent);
}

async function tokenRows() {
  return s.runtime.database.db.selectFrom('tokens').selectAll().orderBy('accessor').execute();
}

/** Sends one request and returns its response with the one event it wrote. */
async function audited(req: InjectOptions): Promise<{ res: LightMyRequestResponse; event: AuditedEvent }> {
  const before = await lastAuditId();
  const res = await s.app.inject(req);
  const events = await eventsAfter(before);
  expect(events).toHaveLength(1);
  return { res, event: events[0]! };
}

beforeAll(async () => {
  s = await startTestServer();
  admin = bearer(s.adminToken);
  adminAccessor = s.adminToken.split('.')[1]!;
});

afterAll(async () => {
  await s?.close();
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('one event per authenticated request', () => {
  const adminPrincipal = () => ({ type: 'Rampart::Token', id: adminAccessor, tenant: 'default', auth_method: 'token' });

  it('records who did what to which resource, with what result, under the response request id', async () => {
    s.clock.advance(1000);
    const now = s.clock.now().toISOString();

    const self = await audited({ method: 'GET', url: '/v1/tokens/self', headers: admin });
    expect(self.res.statusCode).toBe(200);
    expect(self.event).toEqual({
      schema_version: 1,
      ocsf: { category_uid: 6, class_uid: 6003, activity_id: 2, type_uid: 600302, status_id: 1, severity_id: 1 },
      time: now,
      tenant: 'default',
      request_id: self.res.headers['x-request-id'],
      source_ip: '127.0.0.1',
      principal: adminPrincipal(),
      action: 'token:lookup-self',
      resource: { type: 'Rampart::Collection', id: 'default/tokens/self' },
      outcome: 'success',
      authorization: { decision: 'allow', policies: ['tenant-admin'], policy_version: 1 },
      error_code: null,
      http: { method: 'GET', route: '/v1/tokens/self', status: 200 },
    });

    const created = await audited({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { policies: [], display_name: 'audited' } });
    expect(created.res.statusCode).toBe(201);
    const token = created.res.json() as { token: string; accessor: string };
    expect(created.event).toEqual({
      schema_version: 1,
      ocsf: { category_uid: 3, class_uid: 3004, activity_id: 1, type_uid: 300401, status_id: 1, severity_id: 1 },
      time: now,
      tenant: 'default',
      request_id: created.res.headers['x-request-id'],
      source_ip: '127.0.0.1',
      principal: adminPrincipal(),
      action: 'token:create',
      resource: { type: 'Rampart::Collection', id: 'default/tokens' },
      outcome: 'success',
      authorization: { decision: 'allow', policies: ['tenant-admin'], policy_version: 1 },
      error_code: null,
      http: { method: 'POST', route: '/v1/tokens', status: 201 },
      details: { created_accessor: token.accessor, policies: [] },
      // The display name may name a person: only sealed under its subject's key.
      subject: { ref: s.runtime.subjects.refOf('audited'), key_id: expect.any(String), data: expect.any(String) },
    });
    expect(JSON.stringify(created.event)).not.toContain('"audited"');

    const lookup = await audited({ method: 'GET', url: `/v1/tokens/${token.accessor}`, headers: admin });
    expect(lookup.res.statusCode).toBe(200);
    expect(lookup.event).toMatchObject({
      request_id: lookup.res.headers['x-request-id'],
      principal: adminPrincipal(),
      action: 'token:lookup',
      resource: { type: 'Rampart::Token', id: token.accessor },
      outcome: 'success',
      authorization: { decision: 'allow', policies: ['tenant-admin'], policy_version: 1 },
      error_code: null,
      http: { method: 'GET', route: '/v1/tokens/:accessor', status: 200 },
    });

    const denied = await audited({ method: 'GET', url: '/v1/tokens/self', headers: bearer(token.token) });
    expect(denied.res.statusCode).toBe(403);
    expect(denied.event).toMatchObject({
      request_id: denied.res.headers['x-request-id'],
      principal: { type: 'Rampart::Token', id: token.accessor, tenant: 'default', auth_method: 'token' },
      action: 'token:lookup-self',
      resource: { type: 'Rampart::Collection', id: 'default/tokens/self' },
      outcome: 'denied',
      authorization: { decision: 'deny', policies: [], policy_version: 1 },
      error_code: 'authz.denied',
      http: { method: 'GET', route: '/v1/tokens/self', status: 403 },
    });

    const revoked = await audited({ method: 'DELETE', url: `/v1/tokens/${token.accessor}`, headers: admin });
    expect(revoked.res.statusCode).toBe(204);
    expect(revoked.event).toMatchObject({
      request_id: revoked.res.headers['x-request-id'],
      action: 'token:revoke',
      resource: { type: 'Rampart::Token', id: token.accessor },
      outcome: 'success',
      http: { method: 'DELETE', route: '/v1/tokens/:accessor', status: 204 },
      details: { revoked_accessor: token.accessor },
    });

    const unauthenticated = await audited({ method: 'GET', url: '/v1/tokens/self', headers: bearer(token.token) });
    expect(unauthenticated.res.statusCode).toBe(401);
    expect(unauthenticated.event).toMatchObject({
      request_id: unauthenticated.res.headers['x-request-id'],
      principal: null,
      action: null,
      resource: null,
      outcome: 'unauthenticated',
      authorization: null,
      error_code: 'auth.token_revoked',
      http: { method: 'GET', route: '/v1/tokens/self', status: 401 },
    });

    const tenant = await audited({ method: 'POST', url: '/v1/tenants', headers: admin, payload: { name: 'acme' } });
    expect(tenant.res.statusCode).toBe(201);
    expect(tenant.event).toMatchObject({
      tenant: 'default',
      request_id: tenant.res.headers['x-request-id'],
      action: 'tenant:create',
      resource: { type: 'Rampart::Collection', id: 'default/tenants' },
      outcome: 'success',
      http: { method: 'POST', route: '/v1/tenants', status: 201 },
      details: { created_tenant: 'acme' },
    });

    const list = await audited({ method: 'GET', url: '/v1/tenants', headers: admin });
    expect(list.res.statusCode).toBe(200);
    expect(list.event).toMatchObject({ action: 'tenant:list', outcome: 'success', http: { route: '/v1/tenants', status: 200 } });

    // Filed under the addressed tenant, with the operator as principal.
    const events = await audited({ method: 'GET', url: '/v1/audit/events', headers: { ...admin, 'x-rampart-tenant': 'acme' } });
    expect(events.res.statusCode).toBe(200);
    expect(events.event).toMatchObject({
      tenant: 'acme',
      request_id: events.res.headers['x-request-id'],
      principal: adminPrincipal(),
      action: 'audit:read',
      resource: { type: 'Rampart::Collection', id: 'acme/audit' },
      outcome: 'success',
      http: { method: 'GET', route: '/v1/audit/events', status: 200 },
    });
    const acmeRows = await s.runtime.stores.audit.listEvents('acme', 0, 1000);
    expect(acmeRows.items.map((r) => (JSON.parse(r.payload) as AuditedEvent).request_id)).toEqual([events.res.headers['x-request-id']]);
  });

  it('gives every request its own request id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const { res, event } = await audited({ method: 'GET', url: '/v1/tokens/self', headers: admin });
      expect(event.request_id).toBe(res.headers['x-request-id']);
      ids.add(event.request_id);
    }
    expect(ids.size).toBe(5);
  });

  it('writes no event for the public routes', async () => {
    const before = await lastAuditId();
    const count = await s.runtime.stores.audit.count();
    for (const url of ['/v1/health', '/metrics', '/v1/openapi.json']) {
      const res = await s.app.inject({ method: 'GET', url, headers: admin });
      expect({ url, status: res.statusCode }).toEqual({ url, status: 200 });
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(await eventsAfter(before)).toEqual([]);
    expect(await s.runtime.stores.audit.count()).toBe(count);
  });

  it('writes the event of a state change in its transaction: no change without its event', async () => {
    const tokensBefore = await tokenRows();
    const before = await lastAuditId();
    // The transaction's own audit insert is the first insert of this request; make only it fail.
    const insert = vi.spyOn(SqlAuditStore.prototype, 'insert').mockRejectedValueOnce(new Error('disk full'));
    const res = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { policies: [] } });
    expect(insert).toHaveBeenCalledTimes(2);
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ code: 'server.internal' });
    expect(res.body).not.toContain('rpt.');
    expect(res.body).not.toContain('disk full');
    // The token insert was rolled back with its event; the failure itself is on record.
    expect(await tokenRows()).toEqual(tokensBefore);
    const events = await eventsAfter(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      request_id: res.headers['x-request-id'],
      action: 'token:create',
      outcome: 'failed',
      error_code: 'server.internal',
      http: { status: 500 },
    });
    expect(events[0]!.details).toBeUndefined();
  });

  it('commits the event of a state change with the change (details.created_accessor)', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { policies: [] } });
    expect(res.statusCode).toBe(201);
    const { accessor } = res.json() as { accessor: string };
    const all = await s.runtime.stores.audit.listEvents('default', 0, 1000);
    const matching = all.items.map((r) => JSON.parse(r.payload) as AuditedEvent).filter((e) => e.details?.created_accessor === accessor);
    expect(matching).toHaveLength(1);
    expect(matching[0]!.request_id).toBe(res.headers['x-request-id']);
    expect((await s.runtime.stores.tokens.get(accessor))?.accessor).toBe(accessor);
  });
});

describe('Merkle integration', () => {
  it('numbers leaves contiguously from 0 in insertion order, under a root anyone can recompute', async () => {
    for (let i = 0; i < 3; i++) await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: admin });
    await s.runtime.audit.integrateAll();

    const rows = await s.runtime.database.db
      .selectFrom('audit_events')
      .select(['id', 'payload', 'leaf_index', 'leaf_hash'])
      .orderBy('id')
      .execute();
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.map((r) => r.leaf_index)).toEqual(rows.map((_, i) => i));

    const leaves = rows.map((r) => leafHash(utf8.encode(r.payload)));
    expect(rows.map((r) => r.leaf_hash)).toEqual(leaves.map(toHex));
    const tree = await s.runtime.stores.audit.treeState();
    expect(tree?.size).toBe(rows.length);
    expect(tree?.rootHash).toBe(toHex(rootFromLeafHashes(leaves)));
    expect(await s.runtime.stores.audit.leafHashes(0, rows.length)).toEqual(leaves.map(toHex));

    // The API reports the same leaf indexes.
    const api = await s.app.inject({ method: 'GET', url: '/v1/audit/events?limit=999', headers: admin });
    const items = (api.json() as { items: { leaf_index: number | null; event: AuditedEvent }[] }).items;
    const byRequest = new Map(rows.map((r) => [(JSON.parse(r.payload) as AuditedEvent).request_id, r.leaf_index]));
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) expect(item.leaf_index).toBe(byRequest.get(item.event.request_id));
  });

  it('extends the same tree on the next integration', async () => {
    await s.runtime.audit.integrateAll();
    const first = await s.runtime.stores.audit.treeState();
    expect(first?.size).toBe(await s.runtime.stores.audit.count());
    for (let i = 0; i < 4; i++) await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: admin });
    await s.runtime.audit.integrateAll();
    const rows = await s.runtime.database.db.selectFrom('audit_events').select(['payload', 'leaf_index']).orderBy('id').execute();
    const tree = await s.runtime.stores.audit.treeState();
    expect(tree?.size).toBe((first?.size ?? 0) + 4);
    expect(rows).toHaveLength(tree?.size ?? -1);
    expect(rows.map((r) => r.leaf_index)).toEqual(rows.map((_, i) => i));
    expect(tree?.rootHash).toBe(toHex(rootFromLeafHashes(rows.map((r) => leafHash(utf8.encode(r.payload))))));
  });
});

describe('fail closed', () => {
  it('answers 503 audit.write_failed, without the data, when the event of a read cannot be written', async () => {
    const before = await lastAuditId();
    vi.spyOn(s.runtime.stores.audit, 'insert').mockRejectedValue(new Error('disk full'));
    const res = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: admin });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toMatchObject({ code: 'audit.write_failed', status: 503, request_id: res.headers['x-request-id'] });
    // Nothing the read computed leaves: not the accessor, not the token's name or policies.
    expect(res.body).not.toContain(adminAccessor);
    expect(res.body).not.toContain('bootstrap-admin');
    expect(res.body).not.toContain('policies');
    expect(res.body).not.toContain('disk full');
    vi.restoreAllMocks();
    expect(await eventsAfter(before)).toEqual([]);

    const metrics = await s.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^rampart_audit_appends_total\{result="error"\} 1$/m);
  });

  it('answers 503 and leaves the store unchanged when a mutation cannot write its event', async () => {
    // AuditLog holds runtime.stores.audit, but a transaction binds its own SqlAuditStore to the
    // transaction, so only the prototype reaches both writes.
    const insert = vi.spyOn(SqlAuditStore.prototype, 'insert').mockRejectedValue(new Error('disk full'));
    const tokensBefore = await tokenRows();
    const before = await lastAuditId();
    const res = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { policies: [], display_name: 'never' } });
    expect(insert).toHaveBeenCalledTimes(2);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'audit.write_failed', status: 503 });
    expect(res.body).not.toContain('rpt.');
    expect(res.body).not.toContain('never');
    vi.restoreAllMocks();
    expect(await tokenRows()).toEqual(tokensBefore);
    expect(await eventsAfter(before)).toEqual([]);
  });

  it('answers 503 to an unauthenticated request whose event cannot be written', async () => {
    vi.spyOn(s.runtime.stores.audit, 'insert').mockRejectedValue(new Error('disk full'));
    const res = await s.app.inject({ method: 'GET', url: '/v1/tokens/self' });
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe('audit.write_failed');
  });

  it('serves again once the audit log can write', async () => {
    const { res } = await audited({ method: 'GET', url: '/v1/tokens/self', headers: admin });
    expect(res.statusCode).toBe(200);
  });
});
