import 'reflect-metadata';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditOutcome } from '../../src/audit/event.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Every kind of bad input the request path can meet. Each one must be answered with a
 * problem+json body carrying its stable code and the request id, leave exactly one audit event
 * that says why, and change nothing in the store (ARCHITECTURE.md, "The path of a request").
 */

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BODY_LIMIT = 2048;

let server: TestServer;
let adminAccessor: string;
/** Every token this file has seen, and every error body it received: scanned for secrets at the end. */
const tokensSeen: string[] = [];
const errorBodies: string[] = [];

interface AuditedEvent {
  readonly tenant: string;
  readonly request_id: string;
  readonly principal: { type: string; id: string; tenant: string; auth_method: string } | null;
  readonly action: string | null;
  readonly resource: { type: string; id: string } | null;
  readonly outcome: string;
  readonly error_code: string | null;
  readonly http: { method: string; route: string; status: number } | null;
}

interface Snapshot {
  readonly tables: unknown;
  readonly lastAuditId: number;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const admin = () => bearer(server.adminToken);
const secretOf = (token: string): string => token.split('.')[2] ?? '';

/** The full contents of the data tables (not just their sizes, so an UPDATE is caught too). */
async function dataTables(s: TestServer) {
  const db = s.runtime.database.db;
  return {
    tokens: await db.selectFrom('tokens').selectAll().orderBy('accessor').execute(),
    tenants: await db.selectFrom('tenants').selectAll().orderBy('name').execute(),
    policy_versions: await db.selectFrom('policy_versions').selectAll().orderBy('tenant').orderBy('store').orderBy('version').execute(),
  };
}

async function auditRowsAfter(s: TestServer, afterId: number) {
  return s.runtime.database.db
    .selectFrom('audit_events')
    .select(['id', 'tenant', 'payload'])
    .where('id', '>', afterId)
    .orderBy('id')
    .execute();
}

async function snapshot(): Promise<Snapshot> {
  const last = await server.runtime.database.db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.max('id').as('id'))
    .executeTakeFirstOrThrow();
  return { tables: await dataTables(server), lastAuditId: Number(last.id ?? 0) };
}

/**
 * Asserts the whole contract of a rejected request and returns its audit event: exact status and
 * code, problem+json, the request id in body and header, one audit event with the outcome and
 * the code, and no change to the data tables.
 */
async function expectRejected(
  before: Snapshot,
  res: LightMyRequestResponse,
  expected: { status: number; code: ErrorCode; outcome: AuditOutcome; tenant?: string },
): Promise<AuditedEvent> {
  errorBodies.push(res.body);
  expect(res.statusCode).toBe(expected.status);
  expect(res.headers['content-type']).toBe(PROBLEM_CONTENT_TYPE);
  const body = res.json() as Record<string, unknown>;
  expect(body.code).toBe(expected.code);
  expect(body.status).toBe(expected.status);
  expect(body.type).toBe(`urn:rampart:problem:${expected.code}`);
  const requestId = res.headers['x-request-id'];
  expect(requestId).toMatch(UUID);
  expect(body.request_id).toBe(requestId);

  const rows = await auditRowsAfter(server, before.lastAuditId);
  expect(rows).toHaveLength(1);
  const event = JSON.parse(rows[0]!.payload) as AuditedEvent;
  expect(event.request_id).toBe(requestId);
  expect(event.outcome).toBe(expected.outcome);
  expect(event.error_code).toBe(expected.code);
  expect(event.http?.status).toBe(expected.status);
  expect(event.tenant).toBe(expected.tenant ?? 'default');
  expect(rows[0]!.tenant).toBe(expected.tenant ?? 'default');

  expect(await dataTables(server)).toEqual(before.tables);
  return event;
}

async function createToken(payload: Record<string, unknown>): Promise<{ token: string; accessor: string }> {
  const res = await server.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload });
  expect(res.statusCode).toBe(201);
  const created = res.json() as { token: string; accessor: string };
  tokensSeen.push(created.token);
  return created;
}

beforeAll(async () => {
  server = await startTestServer({ bodyLimit: BODY_LIMIT });
  tokensSeen.push(server.adminToken);
  adminAccessor = server.adminToken.split('.')[1]!;
});

afterAll(async () => {
  await server?.close();
});

const adminPrincipal = () => ({ type: 'Rampart::Token', id: adminAccessor, tenant: 'default', auth_method: 'token' });

describe('malformed bodies', () => {
  it('answers 400 request.malformed_json to a body that is not JSON', async () => {
    const before = await snapshot();
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...admin(), 'content-type': 'application/json' },
      payload: '{"ttl": "1h",',
    });
    const event = await expectRejected(before, res, { status: 400, code: 'request.malformed_json', outcome: 'invalid' });
    // The body is parsed after authorization, so the event knows who tried what.
    expect(event.principal).toEqual(adminPrincipal());
    expect(event.action).toBe('token:create');
  });

  it('answers 400 request.invalid to a field of the wrong type, naming the field', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { policies: 'admin' } });
    await expectRejected(before, res, { status: 400, code: 'request.invalid', outcome: 'invalid' });
    expect(res.json().errors).toEqual([{ path: 'body/policies', message: 'must be array' }]);
  });

  it('answers 400 request.unknown_field to a field the endpoint does not accept, naming it', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { policies: [], bogus: 1 } });
    await expectRejected(before, res, { status: 400, code: 'request.unknown_field', outcome: 'invalid' });
    expect(res.json().errors).toEqual([{ path: 'body', message: 'unknown field "bogus"' }]);
  });

  it('answers 413 request.body_too_large to a body over the configured limit', async () => {
    const before = await snapshot();
    const payload = JSON.stringify({ display_name: 'x'.repeat(4096) });
    expect(Buffer.byteLength(payload)).toBeGreaterThan(BODY_LIMIT);
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...admin(), 'content-type': 'application/json' },
      payload,
    });
    await expectRejected(before, res, { status: 413, code: 'request.body_too_large', outcome: 'invalid' });
  });

  // Regression: Fastify's default text/plain parser turned this into a 400 validation error.
  it('answers 415 request.unsupported_media_type to a text/plain body', async () => {
    const before = await snapshot();
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...admin(), 'content-type': 'text/plain' },
      payload: '{"policies":[]}',
    });
    await expectRejected(before, res, { status: 415, code: 'request.unsupported_media_type', outcome: 'invalid' });
  });

  it('answers 415 request.unsupported_media_type to a media type no parser accepts', async () => {
    const before = await snapshot();
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...admin(), 'content-type': 'application/xml' },
      payload: '<token/>',
    });
    await expectRejected(before, res, { status: 415, code: 'request.unsupported_media_type', outcome: 'invalid' });
  });
});

describe('tenant resolution', () => {
  it('answers 404 tenant.unknown to an X-Rampart-Tenant that names no tenant', async () => {
    const before = await snapshot();
    const res = await server.app.inject({
      method: 'GET',
      url: '/v1/tokens/self',
      headers: { ...admin(), 'x-rampart-tenant': 'nope' },
    });
    const event = await expectRejected(before, res, { status: 404, code: 'tenant.unknown', outcome: 'invalid', tenant: 'default' });
    // Filed under the caller's home tenant, never under the name the caller made up.
    expect(event.principal).toEqual(adminPrincipal());
    expect(event.action).toBeNull();
  });
});

describe('authentication', () => {
  it('answers 401 auth.missing_credentials when no credentials are presented', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self' });
    const event = await expectRejected(before, res, { status: 401, code: 'auth.missing_credentials', outcome: 'unauthenticated' });
    expect(event.principal).toBeNull();
    expect(event.http).toEqual({ method: 'GET', route: '/v1/tokens/self', status: 401 });
  });

  it('answers 401 auth.token_invalid to a token that is not in the token format', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer('garbage') });
    const event = await expectRejected(before, res, { status: 401, code: 'auth.token_invalid', outcome: 'unauthenticated' });
    expect(event.principal).toBeNull();
  });

  it('answers 401 auth.token_invalid to a real accessor with a wrong secret, as to an unknown token', async () => {
    const { token } = await createToken({ policies: [] });
    const last = token.at(-1);
    const forged = `${token.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`;
    expect(forged).not.toBe(token);
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(forged) });
    const event = await expectRejected(before, res, { status: 401, code: 'auth.token_invalid', outcome: 'unauthenticated' });
    expect(event.principal).toBeNull();
    // Same answer as for a token that does not exist: nothing confirms the accessor is real.
    expect(res.json().detail).toBe('the token is not recognised');
  });

  it('answers 401 auth.token_expired once the clock passes the token TTL', async () => {
    const { token } = await createToken({ ttl: '1m', policies: [] });
    const before = await snapshot();
    server.clock.advance(61_000);
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(token) });
    await expectRejected(before, res, { status: 401, code: 'auth.token_expired', outcome: 'unauthenticated' });
  });

  it('answers 401 auth.token_revoked to a revoked token', async () => {
    const { token, accessor } = await createToken({ policies: [] });
    const revoke = await server.app.inject({ method: 'DELETE', url: `/v1/tokens/${accessor}`, headers: admin() });
    expect(revoke.statusCode).toBe(204);
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(token) });
    await expectRejected(before, res, { status: 401, code: 'auth.token_revoked', outcome: 'unauthenticated' });
  });

  it('answers 401 auth.token_invalid to an Authorization header that is not "Bearer <token>"', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { authorization: 'Basic xyz' } });
    await expectRejected(before, res, { status: 401, code: 'auth.token_invalid', outcome: 'unauthenticated' });
  });

  it('accepts the token in X-Vault-Token exactly as in Authorization: Bearer', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { 'x-vault-token': server.adminToken } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accessor: adminAccessor, tenant: 'default', policies: ['admin'], display_name: 'bootstrap-admin' });
    const rows = await auditRowsAfter(server, before.lastAuditId);
    expect(rows).toHaveLength(1);
    const event = JSON.parse(rows[0]!.payload) as AuditedEvent;
    expect(event.principal).toEqual(adminPrincipal());
    expect(event.outcome).toBe('success');
    expect(event.request_id).toBe(res.headers['x-request-id']);
    expect(await dataTables(server)).toEqual(before.tables);
  });

  it('answers 401 auth.token_invalid to a bad token in X-Vault-Token', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { 'x-vault-token': 'rpt.not.valid' } });
    await expectRejected(before, res, { status: 401, code: 'auth.token_invalid', outcome: 'unauthenticated' });
  });
});

describe('domain validation', () => {
  it('answers 400 token.ttl_invalid to a ttl that is not a duration', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { ttl: 'forever' } });
    const event = await expectRejected(before, res, { status: 400, code: 'token.ttl_invalid', outcome: 'invalid' });
    expect(event.action).toBe('token:create');
  });

  it('answers 400 token.ttl_invalid to a ttl over the 768h maximum', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { ttl: '10000h' } });
    await expectRejected(before, res, { status: 400, code: 'token.ttl_invalid', outcome: 'invalid' });
    expect(res.json().detail).toBe('ttl must be between 1s and 768h');
  });

  it('answers 400 tenant.name_invalid to a tenant name that is not a DNS label', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin(), payload: { name: 'Bad_Name' } });
    const event = await expectRejected(before, res, { status: 400, code: 'tenant.name_invalid', outcome: 'invalid' });
    expect(event.action).toBe('tenant:create');
  });

  it('answers 409 tenant.exists to a second tenant of the same name', async () => {
    const first = await server.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin(), payload: { name: 'dup' } });
    expect(first.statusCode).toBe(201);
    const before = await snapshot();
    const res = await server.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin(), payload: { name: 'dup' } });
    await expectRejected(before, res, { status: 409, code: 'tenant.exists', outcome: 'invalid' });
  });

  it('answers 400 request.invalid to an accessor that is not in the accessor format', async () => {
    for (const method of ['GET', 'DELETE'] as const) {
      const before = await snapshot();
      const res = await server.app.inject({ method, url: '/v1/tokens/abc', headers: admin() });
      const event = await expectRejected(before, res, { status: 400, code: 'request.invalid', outcome: 'invalid' });
      expect(event.http).toEqual({ method, route: '/v1/tokens/:accessor', status: 400 });
      expect(res.json().errors).toEqual([{ path: 'params/accessor', message: 'must match pattern "^[A-Za-z0-9_-]{22}$"' }]);
    }
  });

  it('answers 404 request.not_found to an unknown route, and audits it', async () => {
    const before = await snapshot();
    const res = await server.app.inject({ method: 'GET', url: '/v1/nope?x=1', headers: admin() });
    const event = await expectRejected(before, res, { status: 404, code: 'request.not_found', outcome: 'invalid' });
    expect(event.principal).toEqual(adminPrincipal());
    expect(event.http).toEqual({ method: 'GET', route: '/v1/nope', status: 404 });
    expect(res.json().detail).toBe('no route GET /v1/nope');
  });
});

describe('secrets', () => {
  it('never writes a token or its secret into an audit event or an error body', async () => {
    // A token used in every way that ends in an error, so its secret has had every chance to leak.
    const { token, accessor } = await createToken({ ttl: '1h', policies: [] });
    const forged = `${token.slice(0, -1)}${token.at(-1) === 'A' ? 'B' : 'A'}`;
    const attempts = [
      { method: 'GET' as const, url: '/v1/tokens/self', headers: bearer(forged) },
      { method: 'GET' as const, url: '/v1/tokens/self', headers: { 'x-vault-token': forged } },
      { method: 'GET' as const, url: '/v1/tokens/self', headers: { ...bearer(token), 'x-rampart-tenant': 'nope' } },
      { method: 'GET' as const, url: '/v1/tokens/self', headers: bearer(token) }, // no policies: 403
      { method: 'GET' as const, url: '/v1/nope', headers: bearer(token) },
      { method: 'POST' as const, url: '/v1/tokens', headers: { ...bearer(token), 'content-type': 'application/json' }, payload: '{' },
      { method: 'GET' as const, url: '/v1/tokens/self', headers: { authorization: `Token ${token}` } },
    ];
    for (const a of attempts) {
      const res = await server.app.inject(a);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      errorBodies.push(res.body);
    }
    await server.app.inject({ method: 'DELETE', url: `/v1/tokens/${accessor}`, headers: admin() });
    const revoked = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(token) });
    expect(revoked.statusCode).toBe(401);
    errorBodies.push(revoked.body);

    const payloads = (await auditRowsAfter(server, 0)).map((r) => r.payload).join('\n');
    const bodies = errorBodies.join('\n');
    expect(tokensSeen.length).toBeGreaterThanOrEqual(2);
    for (const t of [...tokensSeen, forged]) {
      for (const needle of [t, secretOf(t)]) {
        expect(needle.length).toBeGreaterThanOrEqual(43);
        expect(payloads).not.toContain(needle);
        expect(bodies).not.toContain(needle);
      }
    }
    // The accessor is what names a token in the log.
    expect(payloads).toContain(accessor);
  });
});
