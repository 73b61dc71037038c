import 'reflect-metadata';
import { rmSync } from 'node:fs';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/core/version.js';
import { type TestServer, startTestServer } from '../support/server.js';

/** The public, unauthenticated routes: the OpenAPI document, Prometheus metrics and health. */

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface Operation {
  summary?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[];
  requestBody?: { required: boolean; content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, unknown>;
}
interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  components: { securitySchemes: Record<string, unknown> };
  security: unknown[];
  paths: Record<string, Record<string, Operation>>;
}

describe('GET /v1/openapi.json', () => {
  let s: TestServer;
  let doc: OpenApiDoc;

  beforeAll(async () => {
    s = await startTestServer();
    const res = await s.app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    doc = res.json() as OpenApiDoc;
  });

  afterAll(async () => {
    await s?.close();
  });

  it('is an OpenAPI 3.1 document of this version, secured by bearer and X-Vault-Token', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toEqual({ title: 'Rampart control plane', version: VERSION });
    expect(doc.components.securitySchemes).toEqual({
      bearer: { type: 'http', scheme: 'bearer' },
      vaultToken: { type: 'apiKey', in: 'header', name: 'X-Vault-Token' },
    });
    expect(doc.security).toEqual([{ bearer: [] }, { vaultToken: [] }]);
    expect(doc.paths['/v1/health']?.get?.security).toEqual([]);
    const created = (doc.paths['/v1/tokens'] as Record<string, { responses: Record<string, { content: Record<string, unknown> }> }>).post!;
    expect(Object.keys(created.responses['403']!.content)).toEqual(['application/problem+json']);
    expect(Object.keys(created.responses['201']!.content)).toEqual(['application/json']);
  });

  it('documents every API route, and only the two plumbing routes are hidden', () => {
    const routes: [string, string, string][] = [
      ['GET', '/v1/health', '/v1/health'],
      ['POST', '/v1/tenants', '/v1/tenants'],
      ['GET', '/v1/tenants', '/v1/tenants'],
      ['POST', '/v1/tokens', '/v1/tokens'],
      ['GET', '/v1/tokens/self', '/v1/tokens/self'],
      ['GET', '/v1/tokens/:accessor', '/v1/tokens/{accessor}'],
      ['DELETE', '/v1/tokens/:accessor', '/v1/tokens/{accessor}'],
      ['GET', '/v1/audit/events', '/v1/audit/events'],
      ['GET', '/v1/audit/key', '/v1/audit/key'],
      ['GET', '/v1/audit/tlog/checkpoint', '/v1/audit/tlog/checkpoint'],
      ['GET', '/v1/audit/tlog/tile/*', '/v1/audit/tlog/tile/{*}'],
      ['GET', '/v1/audit/tlog/tile/entries/*', '/v1/audit/tlog/tile/entries/{*}'],
      ['GET', '/v1/audit/proof/inclusion', '/v1/audit/proof/inclusion'],
      ['GET', '/v1/audit/proof/consistency', '/v1/audit/proof/consistency'],
      ['POST', '/v1/audit/hash', '/v1/audit/hash'],
      ['POST', '/v1/audit/erase', '/v1/audit/erase'],
      ['GET', '/v1/audit/legal-hold', '/v1/audit/legal-hold'],
      ['POST', '/v1/audit/legal-hold', '/v1/audit/legal-hold'],
      ['POST', '/v1/pki/sign', '/v1/pki/sign'],
      ['POST', '/v1/pki/revoke', '/v1/pki/revoke'],
      ['GET', '/v1/pki/crl', '/v1/pki/crl'],
      ['GET', '/v1/pki/crl/delta', '/v1/pki/crl/delta'],
      ['POST', '/v1/pki/ocsp', '/v1/pki/ocsp'],
      ['GET', '/v1/pki/ocsp/*', '/v1/pki/ocsp/{*}'],
      ['GET', '/v1/pki/ca/pem', '/v1/pki/ca/pem'],
      ['POST', '/v1/pki/registrations', '/v1/pki/registrations'],
      ['GET', '/v1/pki/registrations', '/v1/pki/registrations'],
      ['GET', '/v1/pki/registrations/:id', '/v1/pki/registrations/{id}'],
      ['DELETE', '/v1/pki/registrations/:id', '/v1/pki/registrations/{id}'],
      ['POST', '/v1/pki/agent/tokens', '/v1/pki/agent/tokens'],
      ['POST', '/v1/pki/agent/attest', '/v1/pki/agent/attest'],
      ['GET', '/v1/pki/agent/registrations', '/v1/pki/agent/registrations'],
      ['POST', '/v1/pki/agent/svids', '/v1/pki/agent/svids'],
      ['GET', '/v1/pki/events', '/v1/pki/events'],
      ['GET', '/v1/secrets/events', '/v1/secrets/events'],
      ['GET', '/v1/pki/issuers/:issuer/crl', '/v1/pki/issuers/{issuer}/crl'],
      ['GET', '/v1/pki/issuers/:issuer/crl/delta', '/v1/pki/issuers/{issuer}/crl/delta'],
      ['GET', '/v1/pki/bundle.jwks', '/v1/pki/bundle.jwks'],
      ['GET', '/v1/pki/ca/status', '/v1/pki/ca/status'],
      ['POST', '/v1/pki/ca/rotate', '/v1/pki/ca/rotate'],
      ['POST', '/v1/pki/ca/activate', '/v1/pki/ca/activate'],
      ['POST', '/v1/pki/ca/intermediate/csr', '/v1/pki/ca/intermediate/csr'],
      ['POST', '/v1/pki/ca/intermediate/set-signed', '/v1/pki/ca/intermediate/set-signed'],
      ['POST', '/v1/pki/ca/root/export', '/v1/pki/ca/root/export'],
      ['POST', '/v1/pki/ca/root/remove', '/v1/pki/ca/root/remove'],
      ['POST', '/v1/pki/ca/root/import', '/v1/pki/ca/root/import'],
      ['POST', '/v1/authz/stores/:store/check', '/v1/authz/stores/{store}/check'],
      ['POST', '/v1/authz/stores/:store/batch', '/v1/authz/stores/{store}/batch'],
      ['POST', '/v1/authz/check', '/v1/authz/check'],
      ['POST', '/v1/authz/batch', '/v1/authz/batch'],
      ['GET', '/v1/authz/stores/:store/bundle', '/v1/authz/stores/{store}/bundle'],
      ['POST', '/v1/authz/stores/:store/preview', '/v1/authz/stores/{store}/preview'],
      ['GET', '/v1/authz/stores', '/v1/authz/stores'],
      ['PUT', '/v1/authz/stores/:store/policies', '/v1/authz/stores/{store}/policies'],
      ['POST', '/v1/authz/stores/:store/rollback', '/v1/authz/stores/{store}/rollback'],
      ['POST', '/v1/authz/stores/rampart/reseed', '/v1/authz/stores/rampart/reseed'],
      ['GET', '/v1/authz/stores/:store/versions', '/v1/authz/stores/{store}/versions'],
      ['GET', '/v1/authz/stores/:store/versions/:version', '/v1/authz/stores/{store}/versions/{version}'],
      ['GET', '/v1/authz/stores/:store/diff', '/v1/authz/stores/{store}/diff'],
      ['PUT', '/v1/authz/stores/:store/entities', '/v1/authz/stores/{store}/entities'],
      ['GET', '/v1/authz/stores/:store/entities', '/v1/authz/stores/{store}/entities'],
    ];
    const hidden = ['/v1/openapi.json', '/metrics'];
    for (const [method, url] of routes) expect({ method, url, registered: s.app.hasRoute({ method, url }) }).toEqual({ method, url, registered: true });
    for (const url of hidden) expect(s.app.hasRoute({ method: 'GET', url })).toBe(true);

    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(routes.map(([m, , p]) => `${m} ${p}`).sort());
    for (const url of hidden) expect(doc.paths[url]).toBeUndefined();
    // Vault's API is served outside the OpenAPI document (its clients know its paths): the
    // public sys routes, AppRole login, and one wildcard route for everything else.
    for (const url of ['/v1/sys/seal-status', '/v1/sys/init', '/v1/sys/health']) expect(s.app.hasRoute({ method: 'GET', url })).toBe(true);
    expect(s.app.hasRoute({ method: 'POST', url: '/v1/auth/approle/login' })).toBe(true);
    for (const url of Object.keys(doc.paths)) expect(url.startsWith('/v1/sys/') || url.startsWith('/v1/auth/')).toBe(false);
  });

  it('documents the request body schemas, closed to unknown fields', () => {
    expect(doc.paths['/v1/tokens']?.post?.requestBody).toEqual({
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ttl: { type: 'string', maxLength: 32, description: 'e.g. "1h", "30m", "3600" (default 24h, at most 768h)' },
              policies: { type: 'array', maxItems: 64, items: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' } },
              display_name: { type: 'string', maxLength: 128 },
            },
          },
        },
      },
    });
    expect(doc.paths['/v1/tenants']?.post?.requestBody).toEqual({
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: { name: { type: 'string', minLength: 1, maxLength: 63 } },
          },
        },
      },
    });
  });

  it('documents path and query parameters and the error responses', () => {
    for (const method of ['get', 'delete']) {
      expect(doc.paths['/v1/tokens/{accessor}']?.[method]?.parameters).toEqual([
        { in: 'path', name: 'accessor', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' } },
      ]);
    }
    expect(doc.paths['/v1/tenants']?.get?.parameters?.map((p) => [p.in, p.name, p.required])).toEqual([
      ['query', 'limit', false],
      ['query', 'cursor', false],
    ]);
    expect(doc.paths['/v1/audit/events']?.get?.parameters?.map((p) => [p.in, p.name, p.required])).toEqual(
      ['limit', 'cursor', 'since', 'until', 'principal', 'action', 'resource', 'outcome'].map((n) => ['query', n, false]),
    );
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect({ route: `${method} ${path}`, summary: typeof op.summary }).toEqual({ route: `${method} ${path}`, summary: 'string' });
        // Public operations (security: []) authenticate nobody, so they cannot answer 401 or 403.
        if (path !== '/v1/health' && op.security?.length !== 0) {
          expect({ route: `${method} ${path}`, codes: ['400', '401', '403', '404', '503'].filter((c) => !(c in op.responses)) }).toEqual({
            route: `${method} ${path}`,
            codes: [],
          });
        }
      }
    }
    expect(Object.keys(doc.paths['/v1/tenants']?.post?.responses ?? {})).toContain('409');
  });
});

describe('GET /metrics', () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer();
  });

  afterAll(async () => {
    await s?.close();
  });

  it('counts requests by route, method and status, audit appends and authorization decisions', async () => {
    const admin = bearer(s.adminToken);
    const inject = (req: InjectOptions) => s.app.inject(req);
    expect((await inject({ method: 'GET', url: '/v1/tokens/self', headers: admin })).statusCode).toBe(200);
    expect((await inject({ method: 'GET', url: '/v1/tokens/self', headers: admin })).statusCode).toBe(200);
    expect((await inject({ method: 'GET', url: '/v1/tokens/self' })).statusCode).toBe(401);
    const created = await inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { policies: [] } });
    expect(created.statusCode).toBe(201);
    const nobody = bearer((created.json() as { token: string }).token);
    expect((await inject({ method: 'GET', url: '/v1/tokens/self', headers: nobody })).statusCode).toBe(403);
    expect((await inject({ method: 'GET', url: '/v1/tenants', headers: nobody })).statusCode).toBe(403);
    expect((await inject({ method: 'GET', url: '/v1/nope', headers: admin })).statusCode).toBe(404);
    expect((await inject({ method: 'GET', url: '/v1/health' })).statusCode).toBe(200);

    const res = await inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const lines = res.body.split('\n');
    const value = (series: string): number | undefined => {
      const line = lines.find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };

    expect(lines).toContain('# TYPE rampart_http_requests_total counter');
    expect(value('rampart_http_requests_total{route="/v1/tokens/self",method="GET",status="200"}')).toBe(2);
    expect(value('rampart_http_requests_total{route="/v1/tokens/self",method="GET",status="401"}')).toBe(1);
    expect(value('rampart_http_requests_total{route="/v1/tokens/self",method="GET",status="403"}')).toBe(1);
    expect(value('rampart_http_requests_total{route="/v1/tokens",method="POST",status="201"}')).toBe(1);
    expect(value('rampart_http_requests_total{route="/v1/tenants",method="GET",status="403"}')).toBe(1);
    expect(value('rampart_http_requests_total{route="unmatched",method="GET",status="404"}')).toBe(1);
    expect(value('rampart_http_requests_total{route="/v1/health",method="GET",status="200"}')).toBe(1);
    // This very request is counted once it has been answered, not in its own answer.
    expect(value('rampart_http_requests_total{route="/metrics",method="GET",status="200"}')).toBeUndefined();
    expect(value('rampart_http_request_duration_seconds_count{route="/v1/tokens/self",method="GET",status="200"}')).toBe(2);

    // Seven audited requests (health is public): six appended by the hook, one in its transaction.
    expect(lines).toContain('# TYPE rampart_audit_appends_total counter');
    expect(value('rampart_audit_appends_total{result="ok"}')).toBe(7);
    expect(value('rampart_audit_appends_total{result="error"}')).toBeUndefined();

    // Group commit (SQLite) reports each batch: at least the bootstrap's and the token create's.
    expect(lines).toContain('# TYPE rampart_store_batch_size histogram');
    expect(value('rampart_store_batch_size_count{result="ok"}')).toBeGreaterThanOrEqual(2);
    expect(value('rampart_store_batch_size_count{result="error"}')).toBeUndefined();

    // Two lookups and the create were allowed; the two no-policy requests denied. The 401 and the
    // unknown route never reached the authorizer.
    expect(lines).toContain('# TYPE rampart_authz_decisions_total counter');
    expect(value('rampart_authz_decisions_total{decision="allow"}')).toBe(3);
    expect(value('rampart_authz_decisions_total{decision="deny"}')).toBe(2);

    const again = await inject({ method: 'GET', url: '/metrics' });
    expect(again.body).toMatch(/^rampart_http_requests_total\{route="\/metrics",method="GET",status="200"\} 1$/m);
  });
});

describe('GET /v1/health', () => {
  it('answers ok with the version and the store', async () => {
    const s = await startTestServer();
    try {
      const res = await s.app.inject({ method: 'GET', url: '/v1/health' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.json()).toEqual({ status: 'ok', version: VERSION, store: 'sqlite' });
      expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    } finally {
      await s.close();
    }
  });

  it('answers 503 store.unavailable once the store is closed', async () => {
    const s = await startTestServer();
    try {
      await s.runtime.database.close();
      const res = await s.app.inject({ method: 'GET', url: '/v1/health' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json()).toEqual({
        type: 'urn:rampart:problem:store.unavailable',
        title: 'The store is unreachable',
        status: 503,
        detail: 'the SQLite database is closed',
        code: 'store.unavailable',
        request_id: res.headers['x-request-id'],
      });
    } finally {
      // The store is already closed: close the app and remove the data, not the runtime.
      await s.app.close();
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  });
});
