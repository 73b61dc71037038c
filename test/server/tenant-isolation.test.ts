import 'reflect-metadata';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RAMPART_POLICY_STORE } from '../../src/authz/entities.js';
import { policyHash, seedPolicies } from '../../src/authz/seed-policies.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Security regression: a tenant's principals can neither read nor change another tenant's data,
 * on any route, and nobody gets anything their policies do not grant (deny by default). Only the
 * operator tenant `default` may cross into other tenants (src/authz/seed-policies.ts).
 */

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
/** Policy ids and policy text must never reach a caller (STYLE.md, "Errors"). */
const POLICY_TELLS = ['tenant-admin', 'operator-admin', 'reader-mints', 'permit', 'Rampart::Role', 'rampart.cedar'];

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
interface RouteCall {
  readonly method: Method;
  readonly url: string;
  readonly action: string;
  readonly payload?: Record<string, unknown>;
  /** The OpenAPI path, where the URL called is not it (wildcards, query strings). */
  readonly documented?: string;
}

/** Every authenticated route, with a request that would succeed for an allowed caller. */
function everyRoute(accessor: string): RouteCall[] {
  return [
    { method: 'GET', url: '/v1/tenants', action: 'tenant:list' },
    { method: 'POST', url: '/v1/tenants', action: 'tenant:create', payload: { name: 'intruder' } },
    { method: 'POST', url: '/v1/tokens', action: 'token:create', payload: { policies: [] } },
    { method: 'GET', url: '/v1/tokens/self', action: 'token:lookup-self' },
    { method: 'GET', url: `/v1/tokens/${accessor}`, action: 'token:lookup' },
    { method: 'DELETE', url: `/v1/tokens/${accessor}`, action: 'token:revoke' },
    { method: 'GET', url: '/v1/audit/events', action: 'audit:read' },
    { method: 'POST', url: '/v1/audit/hash', action: 'audit:hash', payload: { input: 'x' } },
    { method: 'POST', url: '/v1/audit/erase', action: 'audit:erase', payload: { subject: 'someone' } },
    // Denied before the body is read, so the CSR need not be real.
    { method: 'POST', url: '/v1/pki/sign', action: 'pki:sign-request', payload: { csr: 'csr', spiffe_id: 'spiffe://default.rampart.local/x' } },
    { method: 'POST', url: '/v1/pki/revoke', action: 'pki:revoke', payload: { serial_number: '01' } },
    { method: 'POST', url: '/v1/pki/registrations', action: 'pki:registration-create', payload: { spiffe_id: 'spiffe://default.rampart.local/x', parent: 'k8s:cluster:c', selectors: ['unix:uid:0'] } },
    { method: 'GET', url: '/v1/pki/registrations', action: 'pki:registration-list' },
    { method: 'GET', url: '/v1/pki/registrations/reg_AAAAAAAAAAAAAAAAAAAAAA', documented: '/v1/pki/registrations/{id}', action: 'pki:registration-read' },
    { method: 'DELETE', url: '/v1/pki/registrations/reg_AAAAAAAAAAAAAAAAAAAAAA', documented: '/v1/pki/registrations/{id}', action: 'pki:registration-delete' },
    { method: 'POST', url: '/v1/pki/agent/tokens', action: 'pki:agent-token-create', payload: {} },
    { method: 'GET', url: '/v1/pki/agent/registrations', action: 'pki:agent-sync' },
    { method: 'POST', url: '/v1/pki/agent/svids', action: 'pki:agent-sync', payload: { requests: [{ registration_id: 'reg_AAAAAAAAAAAAAAAAAAAAAA', csr: 'csr' }] } },
    { method: 'GET', url: '/v1/pki/events', action: 'pki:events' },
    { method: 'GET', url: '/v1/secrets/events', action: 'vault:read' },
    // The CA hierarchy is shared by every tenant: operator tenant only.
    { method: 'GET', url: '/v1/pki/ca/status', action: 'pki:ca-read' },
    { method: 'POST', url: '/v1/pki/ca/rotate', action: 'pki:ca-rotate', payload: {} },
    { method: 'POST', url: '/v1/pki/ca/activate', action: 'pki:ca-rotate' },
    { method: 'POST', url: '/v1/pki/ca/intermediate/csr', action: 'pki:ca-rotate' },
    { method: 'POST', url: '/v1/pki/ca/intermediate/set-signed', action: 'pki:ca-rotate', payload: { certificate: 'x' } },
    { method: 'POST', url: '/v1/pki/ca/root/export', action: 'pki:ca-root', payload: { passphrase: 'correct horse battery staple' } },
    { method: 'POST', url: '/v1/pki/ca/root/remove', action: 'pki:ca-root', payload: { root_id: 'ca_x' } },
    { method: 'POST', url: '/v1/pki/ca/root/import', action: 'pki:ca-root', payload: { encrypted_key: 'x', passphrase: 'y' } },
    // The tlog reveals every tenant's events: only the operator tenant may be addressed.
    { method: 'GET', url: '/v1/audit/tlog/tile/entries/000', documented: '/v1/audit/tlog/tile/entries/{*}', action: 'audit:read-log' },
    // The legal hold stops pruning of every tenant's events: operator tenant only, too.
    { method: 'GET', url: '/v1/audit/legal-hold', action: 'audit:legal-hold' },
    { method: 'POST', url: '/v1/audit/legal-hold', action: 'audit:legal-hold', payload: { enabled: true, reason: 'intrusion' } },
    { method: 'GET', url: '/v1/audit/proof/inclusion?index=0', documented: '/v1/audit/proof/inclusion', action: 'audit:proof' },
    { method: 'GET', url: '/v1/audit/proof/consistency?from=1', documented: '/v1/audit/proof/consistency', action: 'audit:proof' },
    { method: 'POST', url: '/v1/authz/stores/default/check', documented: '/v1/authz/stores/{store}/check', action: 'authz:check', payload: { principal: { type: 'User', id: 'a' }, action: { type: 'Action', id: 'r' }, resource: { type: 'Doc', id: 'd' } } },
    { method: 'POST', url: '/v1/authz/stores/default/batch', documented: '/v1/authz/stores/{store}/batch', action: 'authz:check', payload: { requests: [{ principal: { type: 'User', id: 'a' }, action: { type: 'Action', id: 'r' }, resource: { type: 'Doc', id: 'd' } }] } },
    { method: 'POST', url: '/v1/authz/check', action: 'authz:check', payload: { principal: { type: 'User', id: 'a' }, action: { type: 'Action', id: 'r' }, resource: { type: 'Doc', id: 'd' } } },
    { method: 'POST', url: '/v1/authz/batch', action: 'authz:check', payload: { requests: [{ principal: { type: 'User', id: 'a' }, action: { type: 'Action', id: 'r' }, resource: { type: 'Doc', id: 'd' } }] } },
    { method: 'GET', url: '/v1/authz/stores/default/bundle', documented: '/v1/authz/stores/{store}/bundle', action: 'authz:bundle' },
    { method: 'POST', url: '/v1/authz/stores/default/preview', documented: '/v1/authz/stores/{store}/preview', action: 'authz:preview', payload: { policies: 'permit(principal, action, resource);' } },
    { method: 'GET', url: '/v1/authz/stores', action: 'authz:list-stores' },
    { method: 'PUT', url: '/v1/authz/stores/docs/policies', documented: '/v1/authz/stores/{store}/policies', action: 'authz:push', payload: { policies: 'permit(principal, action, resource);', message: 'intrusion' } },
    { method: 'POST', url: '/v1/authz/stores/docs/rollback', documented: '/v1/authz/stores/{store}/rollback', action: 'authz:rollback', payload: { version: 1 } },
    { method: 'POST', url: '/v1/authz/stores/rampart/reseed', action: 'authz:push', payload: {} },
    { method: 'GET', url: '/v1/authz/stores/docs/versions', documented: '/v1/authz/stores/{store}/versions', action: 'authz:read' },
    { method: 'GET', url: '/v1/authz/stores/docs/versions/1', documented: '/v1/authz/stores/{store}/versions/{version}', action: 'authz:read' },
    { method: 'GET', url: '/v1/authz/stores/docs/diff?from=1&to=1', documented: '/v1/authz/stores/{store}/diff', action: 'authz:read' },
    // Denied before the body (a JSON array of entities) is read.
    { method: 'PUT', url: '/v1/authz/stores/docs/entities', documented: '/v1/authz/stores/{store}/entities', action: 'authz:put-entities' },
    { method: 'GET', url: '/v1/authz/stores/docs/entities', documented: '/v1/authz/stores/{store}/entities', action: 'authz:read' },
  ];
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const accessorOf = (token: string): string => token.split('.')[1]!;

interface AuditedEvent {
  readonly tenant: string;
  readonly request_id: string;
  readonly principal: { type: string; id: string; tenant: string; auth_method: string } | null;
  readonly action: string | null;
  readonly outcome: string;
  readonly error_code: string | null;
  readonly http: { method: string; route: string; status: number } | null;
}

describe.each(TEST_DATABASES)('tenant isolation ($name)', (database) => {
  let s: TestServer;
  let operator: Record<string, string>;
  let operatorAccessor: string;
  /** An `admin` token of tenant acme. */
  let acmeAdmin: string;

  async function dataTables() {
    const db = s.runtime.database.db;
    return {
      tokens: await db.selectFrom('tokens').selectAll().orderBy('accessor').execute(),
      tenants: await db.selectFrom('tenants').selectAll().orderBy('name').execute(),
      policy_versions: await db.selectFrom('policy_versions').selectAll().orderBy('tenant').orderBy('store').orderBy('version').execute(),
    };
  }

  async function lastAuditId(): Promise<number> {
    const row = await s.runtime.database.db.selectFrom('audit_events').select((eb) => eb.fn.max('id').as('id')).executeTakeFirstOrThrow();
    return Number(row.id ?? 0);
  }

  async function auditRowsAfter(id: number) {
    return s.runtime.database.db.selectFrom('audit_events').select(['id', 'tenant', 'payload']).where('id', '>', id).orderBy('id').execute();
  }

  async function call(r: RouteCall, headers: Record<string, string>): Promise<LightMyRequestResponse> {
    return s.app.inject({ method: r.method, url: r.url, headers, ...(r.payload ? { payload: r.payload } : {}) });
  }

  /**
   * Asserts a denial: 403 authz.denied whose body names no policy, one `denied` audit event in
   * the addressed tenant for the route's action, and no change to the data.
   */
  async function expectDenied(r: RouteCall, headers: Record<string, string>, addressedTenant: string): Promise<void> {
    const before = await dataTables();
    const lastId = await lastAuditId();
    const res = await call(r, headers);
    expect({ route: `${r.method} ${r.url}`, status: res.statusCode }).toEqual({ route: `${r.method} ${r.url}`, status: 403 });
    expect(res.headers['content-type']).toBe(PROBLEM_CONTENT_TYPE);
    const body = res.json() as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'authz.denied', status: 403, detail: 'access denied', request_id: res.headers['x-request-id'] });
    for (const tell of POLICY_TELLS) expect(res.body).not.toContain(tell);

    const rows = await auditRowsAfter(lastId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.tenant).toBe(addressedTenant);
    const event = JSON.parse(rows[0]!.payload) as AuditedEvent;
    expect(event).toMatchObject({
      tenant: addressedTenant,
      request_id: res.headers['x-request-id'],
      action: r.action,
      outcome: 'denied',
      error_code: 'authz.denied',
      http: { method: r.method, status: 403 },
    });
    expect(await dataTables()).toEqual(before);
  }

  beforeAll(async () => {
    s = await startTestServer({ database });
    operator = bearer(s.adminToken);
    operatorAccessor = accessorOf(s.adminToken);
    const res = await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: operator, payload: { name: 'acme' } });
    expect(res.statusCode).toBe(201);
    const minted = await s.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...operator, 'x-rampart-tenant': 'acme' },
      payload: { policies: ['admin'], display_name: 'acme-admin', ttl: '1h' },
    });
    expect(minted.statusCode).toBe(201);
    acmeAdmin = (minted.json() as { token: string }).token;
  });

  afterAll(async () => {
    await s?.close();
  });

  it('covers every authenticated route the API documents', async () => {
    const doc = (await s.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths)
      .filter(([path]) => path !== '/v1/health')
      // Public operations (security: [], e.g. the CRL and OCSP) have no principal to isolate.
      .flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => (op as { security?: unknown[] }).security?.length !== 0).map(([m]) => `${m.toUpperCase()} ${path}`))
      .sort();
    const covered = everyRoute('{accessor}')
      .map((r) => `${r.method} ${r.documented ?? r.url}`)
      .sort();
    expect(covered).toEqual(documented);
  });

  it('lets the operator create an admin token in acme via X-Rampart-Tenant', async () => {
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...operator, 'x-rampart-tenant': 'acme' },
      payload: { policies: ['admin'], display_name: 'acme-admin-2' },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ tenant: 'acme', policies: ['admin'] });
  });

  it('authenticates the acme admin in its own tenant', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(acmeAdmin) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accessor: accessorOf(acmeAdmin), tenant: 'acme', policies: ['admin'] });
  });

  it('denies the acme admin listing and creating tenants (operator actions)', async () => {
    const [list, create] = everyRoute(operatorAccessor);
    await expectDenied(list!, bearer(acmeAdmin), 'acme');
    await expectDenied(create!, bearer(acmeAdmin), 'acme');
    expect(await s.runtime.stores.tenants.get('intruder')).toBeUndefined();
  });

  it("answers 404 token.not_found when the acme admin reads or revokes a default token, which stays valid", async () => {
    const before = await s.runtime.stores.tokens.get(operatorAccessor);
    expect(before?.revokedAt).toBeNull();
    for (const method of ['GET', 'DELETE'] as const) {
      const lastId = await lastAuditId();
      const res = await s.app.inject({ method, url: `/v1/tokens/${operatorAccessor}`, headers: bearer(acmeAdmin) });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'token.not_found', detail: 'no token with that accessor in this tenant' });
      // Nothing about the default token leaks: not its tenant, policies or name.
      expect(res.body).not.toContain('bootstrap-admin');
      expect(res.body).not.toContain('"default"');
      const rows = await auditRowsAfter(lastId);
      expect(rows).toHaveLength(1);
      expect(JSON.parse(rows[0]!.payload)).toMatchObject({ tenant: 'acme', error_code: 'token.not_found', http: { status: 404 } });
    }
    expect(await s.runtime.stores.tokens.get(operatorAccessor)).toEqual(before);
    const self = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: operator });
    expect(self.statusCode).toBe(200);
    expect(self.json().revoked).toBe(false);
  });

  it('denies the acme admin every route in tenant default via X-Rampart-Tenant', async () => {
    for (const r of everyRoute(operatorAccessor)) {
      await expectDenied(r, { ...bearer(acmeAdmin), 'x-rampart-tenant': 'default' }, 'default');
    }
    expect((await s.runtime.stores.tokens.get(operatorAccessor))?.revokedAt).toBeNull();
  });

  it('does not let the acme admin tell an unknown tenant from one it may not enter', async () => {
    const ask = (tenant: string) => s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { ...bearer(acmeAdmin), 'x-rampart-tenant': tenant } });
    const [existing, unknown] = [await ask('default'), await ask('no-such-tenant')];
    const shape = (res: LightMyRequestResponse) => {
      const { request_id: _ignored, ...rest } = res.json() as Record<string, unknown>;
      return { status: res.statusCode, body: rest };
    };
    expect(shape(unknown)).toEqual(shape(existing));
    expect(shape(unknown)).toMatchObject({ status: 403, body: { code: 'authz.denied' } });
    // The operator, who may enter every tenant, is told the name is unknown.
    const operatorAsks = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { ...operator, 'x-rampart-tenant': 'no-such-tenant' } });
    expect(operatorAsks.statusCode).toBe(404);
    expect(operatorAsks.json().code).toBe('tenant.unknown');
  });

  it("lists only acme's events to the acme admin, and none of acme's to default", async () => {
    const defaultOnly = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: operator });
    expect(defaultOnly.statusCode).toBe(200);
    const acmeOnly = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(acmeAdmin) });
    expect(acmeOnly.statusCode).toBe(200);

    const acme = await s.app.inject({ method: 'GET', url: '/v1/audit/events?limit=999', headers: bearer(acmeAdmin) });
    expect(acme.statusCode).toBe(200);
    const acmeEvents = (acme.json() as { items: { event: AuditedEvent }[] }).items.map((i) => i.event);
    expect(acmeEvents.length).toBeGreaterThan(0);
    expect(new Set(acmeEvents.map((e) => e.tenant))).toEqual(new Set(['acme']));
    const acmeIds = acmeEvents.map((e) => e.request_id);
    expect(acmeIds).toContain(acmeOnly.headers['x-request-id']);
    expect(acmeIds).not.toContain(defaultOnly.headers['x-request-id']);
    // Matches the store's own view of acme's log event for event, plus the listing's own event.
    const stored = await s.runtime.stores.audit.listEvents('acme', 0, 1000);
    expect(stored.items.map((i) => (JSON.parse(i.payload) as AuditedEvent).request_id)).toEqual([...acmeIds, acme.headers['x-request-id']]);

    const def = await s.app.inject({ method: 'GET', url: '/v1/audit/events?limit=999', headers: operator });
    expect(def.statusCode).toBe(200);
    const defEvents = (def.json() as { items: { event: AuditedEvent }[] }).items.map((i) => i.event);
    expect(new Set(defEvents.map((e) => e.tenant))).toEqual(new Set(['default']));
    expect(defEvents.map((e) => e.request_id)).not.toContain(acmeOnly.headers['x-request-id']);
  });

  it('lets the default admin act in acme via X-Rampart-Tenant (operator)', async () => {
    const inAcme = { ...operator, 'x-rampart-tenant': 'acme' };
    const created = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: inAcme, payload: { policies: [], display_name: 'by-operator' } });
    expect(created.statusCode).toBe(201);
    const token = created.json() as { accessor: string; tenant: string };
    expect(token.tenant).toBe('acme');

    const read = await s.app.inject({ method: 'GET', url: `/v1/tokens/${token.accessor}`, headers: inAcme });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ accessor: token.accessor, tenant: 'acme', display_name: 'by-operator', revoked: false });

    // Without the header the operator addresses its own tenant, where the acme token is absent.
    const own = await s.app.inject({ method: 'GET', url: `/v1/tokens/${token.accessor}`, headers: operator });
    expect(own.statusCode).toBe(404);
    expect(own.json().code).toBe('token.not_found');

    const audit = await s.app.inject({ method: 'GET', url: '/v1/audit/events', headers: inAcme });
    expect(audit.statusCode).toBe(200);
    const events = (audit.json() as { items: { event: AuditedEvent }[] }).items.map((i) => i.event);
    expect(events.find((e) => e.request_id === created.headers['x-request-id'])).toMatchObject({
      tenant: 'acme',
      principal: { id: operatorAccessor, tenant: 'default' },
      action: 'token:create',
      outcome: 'success',
    });

    const revoked = await s.app.inject({ method: 'DELETE', url: `/v1/tokens/${token.accessor}`, headers: inAcme });
    expect(revoked.statusCode).toBe(204);
    expect((await s.runtime.stores.tokens.get(token.accessor))?.revokedAt).not.toBeNull();
  });

  it('denies a token with no policies every route, including looking itself up', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: operator, payload: { policies: [] } });
    expect(res.statusCode).toBe(201);
    const nobody = res.json() as { token: string; accessor: string };
    // Looked up and revoked by accessor: the operator's token (its own trips the bug below).
    for (const r of everyRoute(operatorAccessor)) await expectDenied(r, bearer(nobody.token), 'default');
    for (const r of everyRoute(operatorAccessor)) await expectDenied(r, { ...bearer(nobody.token), 'x-rampart-tenant': 'acme' }, 'acme');
    // A route that does not exist has nothing to authorize: it is a 404 for everyone.
    const missing = await s.app.inject({ method: 'GET', url: '/v1/nope', headers: bearer(nobody.token) });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('request.not_found');
  });

  // Regression: the resource Rampart::Token::"<accessor>" is the principal itself; listing it twice
  // in the entities made Cedar refuse the request and the caller got a 403.
  it('lets an admin look up and revoke its own token by accessor', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: operator, payload: { policies: ['admin'] } });
    expect(res.statusCode).toBe(201);
    const self = res.json() as { token: string; accessor: string };
    const read = await s.app.inject({ method: 'GET', url: `/v1/tokens/${self.accessor}`, headers: bearer(self.token) });
    expect(read.statusCode).toBe(200);
    const revoke = await s.app.inject({ method: 'DELETE', url: `/v1/tokens/${self.accessor}`, headers: bearer(self.token) });
    expect(revoke.statusCode).toBe(204);
  });

  describe('privilege escalation', () => {
    it('denies a reader creating an admin token', async () => {
      const res = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: operator, payload: { policies: ['reader'] } });
      expect(res.statusCode).toBe(201);
      const reader = (res.json() as { token: string }).token;
      await expectDenied({ method: 'POST', url: '/v1/tokens', action: 'token:create', payload: { policies: ['admin'] } }, bearer(reader), 'default');
    });

    it('denies a reader who may create tokens granting a role it does not hold (token:grant-role)', async () => {
      const tenant = await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: operator, payload: { name: 'beta' } });
      expect(tenant.statusCode).toBe(201);
      // beta lets its readers mint tokens, and nothing more.
      const files = {
        ...seedPolicies('beta'),
        'reader.cedar': [
          '@id("reader-mints")',
          'permit (principal in Rampart::Role::"reader", action == Rampart::Action::"token:create", resource)',
          'when { principal.tenant == "beta" && resource.tenant == "beta" };',
          '',
        ].join('\n'),
      };
      await s.runtime.stores.policies.insert({
        tenant: 'beta',
        store: RAMPART_POLICY_STORE,
        version: 2,
        hash: policyHash(files, null),
        policies: files,
        schema: null,
        status: 'active',
        author: 'test',
        message: 'readers may mint tokens',
        createdAt: s.clock.now().toISOString(),
      });
      s.runtime.authorizer.invalidate('beta');

      const minted = await s.app.inject({
        method: 'POST',
        url: '/v1/tokens',
        headers: { ...operator, 'x-rampart-tenant': 'beta' },
        payload: { policies: ['reader'] },
      });
      expect(minted.statusCode).toBe(201);
      const reader = bearer((minted.json() as { token: string }).token);

      // Its own role it may pass on: token:create is all that takes.
      const same = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: reader, payload: { policies: ['reader'] } });
      expect(same.statusCode).toBe(201);
      expect(same.json()).toMatchObject({ tenant: 'beta', policies: ['reader'] });

      // A role it does not hold needs token:grant-role on that role, which it lacks.
      const escalate = { method: 'POST' as const, url: '/v1/tokens', action: 'token:create' };
      await expectDenied({ ...escalate, payload: { policies: ['admin'] } }, reader, 'beta');
      await expectDenied({ ...escalate, payload: { policies: ['reader', 'admin'] } }, reader, 'beta');
      await expectDenied({ ...escalate, payload: { policies: ['admin'] } }, { ...reader, 'x-rampart-tenant': 'default' }, 'default');
    });
  });
});
