import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../support/server.js';
import { refusal, vaultClient } from '../support/vault.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Answers a Vault client relies on outside the engines: unknown routes, `sys/health` parameters,
 * the cluster identity, wrapped logins (docs/secrets.md, "Vault compatibility").
 */
describe('Vault compatibility of the adapter', () => {
  let s: TestServer;
  let vault: ReturnType<typeof vaultClient>;

  async function events(): Promise<Record<string, unknown>[]> {
    await s.runtime.audit.flush();
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id').execute();
    return rows.map((r) => JSON.parse(r.payload) as Record<string, unknown>);
  }

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    vault = vaultClient(s);
    await vault.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name: 'acme' } });
    await vault.mount({ mount_point: 'acmeonly', type: 'kv', options: { version: '2' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('a path no handler serves', () => {
    const noRoute = (path: string) => ({ errors: [`no handler for route "${path}". route entry not found.`] });

    it('answers a Vault client as Vault does, audited', async () => {
      expect(await refusal(vault.read('nosuchmount/x'))).toEqual({ status: 404, body: noRoute('nosuchmount/x') });
      expect(await refusal(vault.list('nosuchmount/x'))).toEqual({ status: 404, body: noRoute('nosuchmount/x/') });
      expect(await refusal(vault.write('auth/nosuch/login', { a: 1 }))).toEqual({ status: 404, body: noRoute('auth/nosuch/login') });
      const r = await s.app.inject({ method: 'GET', url: '/v1/nosuchmount/x?version=1', headers: { 'x-vault-token': s.adminToken } });
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      const mine = (await events()).filter((e) => e.request_id === r.headers['x-request-id']);
      expect(mine).toEqual([expect.objectContaining({ outcome: 'invalid', error_code: 'request.not_found' })]);
    });

    it('answers another tenant’s mount like a path that does not exist', async () => {
      const acme = vaultClient(s, s.adminToken, 'acme');
      expect(await refusal(acme.read('acmeonly/data/x'))).toEqual({ status: 404, body: noRoute('acmeonly/data/x') });
      expect(await refusal(acme.read('nosuchmount/data/x'))).toEqual({ status: 404, body: noRoute('nosuchmount/data/x') });
    });

    it('refuses a bad Vault token there with Vault’s 403', async () => {
      expect(await refusal(vaultClient(s, 'rpt.nope').read('nosuchmount/x'))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
      const r = await s.app.inject({ method: 'GET', url: '/v1/nosuchmount/x', headers: { 'x-vault-request': 'true' } });
      expect(r.statusCode).toBe(403);
      expect(r.json()).toEqual({ errors: ['permission denied'] });
    });

    it('keeps problem+json for Rampart’s own clients and routes', async () => {
      const bearer = await s.app.inject({ method: 'GET', url: '/v1/nosuchmount/x', headers: { authorization: `Bearer ${s.adminToken}` } });
      expect(bearer.statusCode).toBe(404);
      expect(bearer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(bearer.json()).toMatchObject({ code: 'request.not_found' });
      const both = await s.app.inject({ method: 'GET', url: '/v1/nosuch', headers: { authorization: `Bearer ${s.adminToken}`, 'x-vault-token': s.adminToken } });
      expect(both.json()).toMatchObject({ code: 'request.not_found' });
      const none = await s.app.inject({ method: 'GET', url: '/v1/nosuchmount/x' });
      expect(none.statusCode).toBe(401);
      expect(none.json()).toMatchObject({ code: 'auth.missing_credentials' });
      const own = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { 'x-vault-token': s.adminToken } });
      expect(own.statusCode).toBe(200);
      const ownMissing = await s.app.inject({ method: 'GET', url: '/v1/tokens/rpt.nope', headers: { 'x-vault-token': s.adminToken } });
      expect(ownMissing.headers['content-type']).toMatch(/^application\/problem\+json/);
    });
  });

  describe('sys/health and sys/seal-status', () => {
    const health = (query = '') => s.app.inject({ method: 'GET', url: `/v1/sys/health${query}` });

    it('reports a stable cluster identity and the build date', async () => {
      const seal = (await s.app.inject({ method: 'GET', url: '/v1/sys/seal-status' })).json() as Record<string, unknown>;
      expect(seal).toMatchObject({ cluster_name: 'rampart', cluster_id: expect.stringMatching(UUID), build_date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) });
      const h = (await health()).json() as Record<string, unknown>;
      expect(h).toMatchObject({ initialized: false, sealed: false, standby: false, enterprise: false, cluster_name: 'rampart', cluster_id: seal.cluster_id });
      expect(((await health()).json() as Record<string, unknown>).cluster_id).toBe(seal.cluster_id);
      const sys = (await vault.health()) as Record<string, unknown>;
      expect(sys.cluster_id).toBe(seal.cluster_id);
    });

    it('gives another store another cluster ID', async () => {
      const other = await startTestServer();
      try {
        const id = ((await other.app.inject({ method: 'GET', url: '/v1/sys/seal-status' })).json() as { cluster_id: string }).cluster_id;
        expect(id).toMatch(UUID);
        expect(id).not.toBe(((await s.app.inject({ method: 'GET', url: '/v1/sys/seal-status' })).json() as { cluster_id: string }).cluster_id);
      } finally {
        await other.close();
      }
    });

    it('honours activecode and accepts the standby flags of an always-active node', async () => {
      expect((await health('?activecode=299')).statusCode).toBe(299);
      expect((await health('?standbyok=true&perfstandbyok')).statusCode).toBe(200);
      expect((await health('?standbycode=200&performancestandbycode=200&drsecondarycode=200&uninitcode=200&sealedcode=200')).statusCode).toBe(200);
      expect((await vault.health({ standbyok: true })) as Record<string, unknown>).toMatchObject({ standby: false });
    });

    it('refuses a status code that is not one', async () => {
      for (const q of ['?activecode=abc', '?activecode=600', '?activecode=99', '?sealedcode=2e2', '?uninitcode=-200', '?standbycode=', '?standbyok=maybe']) {
        const r = await health(q);
        expect(r.statusCode, q).toBe(400);
        expect(r.json(), q).toEqual({ errors: [expect.any(String)] });
      }
    });

    it('answers sealedcode while sealed, without the cluster identity, as Vault does', async () => {
      const sealed = await startTestServer();
      try {
        sealed.runtime.secretsSeal.seal();
        const h = await sealed.app.inject({ method: 'GET', url: '/v1/sys/health?sealedcode=299&activecode=204' });
        expect(h.statusCode).toBe(299);
        expect(h.json()).toMatchObject({ sealed: true });
        expect(h.json()).not.toHaveProperty('cluster_id');
        expect((await sealed.app.inject({ method: 'GET', url: '/v1/sys/health' })).statusCode).toBe(503);
        expect((await sealed.app.inject({ method: 'GET', url: '/v1/sys/seal-status' })).json()).not.toHaveProperty('cluster_id');
      } finally {
        await sealed.close();
      }
    });
  });

  describe('auth/approle/login with X-Vault-Wrap-TTL', () => {
    it('wraps the login; the unwrap yields a working token, once', async () => {
      await vault.addApproleRole({ role_name: 'ci', policies: 'default' });
      const { data: roleId } = (await vault.getApproleRoleId({ role_name: 'ci' })) as { data: { role_id: string } };
      const { data: secret } = (await vault.getApproleRoleSecret({ role_name: 'ci' })) as { data: { secret_id: string } };
      const anonymous = vaultClient(s, '');
      const wrapped = (await anonymous.approleLogin({ role_id: roleId.role_id, secret_id: secret.secret_id, requestOptions: { headers: { 'X-Vault-Wrap-TTL': '2m' } } })) as {
        auth: unknown;
        wrap_info: { token: string; accessor: string; ttl: number; creation_path: string };
      };
      expect(wrapped.auth).toBeNull();
      expect(wrapped.wrap_info).toMatchObject({ ttl: 120, creation_path: 'auth/approle/login', token: expect.stringMatching(/^rpw\./) });
      expect(anonymous.token || '').toBe('');
      const login = (await vaultClient(s, wrapped.wrap_info.token).unwrap()) as { auth: { client_token: string; accessor: string; metadata: { role_name: string } } };
      expect(login.auth.metadata).toMatchObject({ role_name: 'ci' });
      const self = (await vaultClient(s, login.auth.client_token).tokenLookupSelf()) as { data: { accessor: string } };
      expect(self.data.accessor).toBe(login.auth.accessor);
      expect((await refusal(vaultClient(s, wrapped.wrap_info.token).unwrap())).status).toBe(400);
      const audited = (await events()).filter((e) => (e.resource as { id?: string } | null)?.id === 'auth/approle/login').at(-1)!;
      expect(audited.details).toMatchObject({ role: 'ci', created_accessor: login.auth.accessor, wrapping_accessor: wrapped.wrap_info.accessor, wrapped_accessor: login.auth.accessor });
      expect(JSON.stringify(audited)).not.toContain(login.auth.client_token);
      expect(JSON.stringify(audited)).not.toContain(wrapped.wrap_info.token);
    });

    it('refuses a malformed wrap TTL before logging in', async () => {
      const { data: roleId } = (await vault.getApproleRoleId({ role_name: 'ci' })) as { data: { role_id: string } };
      const { data: secret } = (await vault.getApproleRoleSecret({ role_name: 'ci' })) as { data: { secret_id: string } };
      const r = await refusal(vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: secret.secret_id, requestOptions: { headers: { 'X-Vault-Wrap-TTL': 'soon' } } }));
      expect(r.status).toBe(400);
      // The secret ID was not spent: it still logs in.
      expect(((await vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: secret.secret_id })) as { auth: { client_token: string } }).auth.client_token).toBeTruthy();
    });
  });
});

/** Audit pushback on a Vault path answers in Vault's shape (app.ts onSend, vault/errors.ts). */
describe('audit pushback on Vault paths', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ auditMaxPending: 4 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it.each(['/v1/sys/mounts', '/v1/nosuchmount/x'])('sheds %s with 503 {"errors":[…]} and Retry-After', async (url) => {
    const responses = await Promise.all(Array.from({ length: 64 }, () => s.app.inject({ method: 'GET', url, headers: { 'x-vault-token': s.adminToken } })));
    const shed = responses.filter((r) => r.statusCode === 503);
    expect(shed.length).toBeGreaterThan(0);
    for (const r of shed) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['retry-after']).toBe('1');
      expect(r.json()).toEqual({ errors: [expect.stringContaining('audit log')] });
    }
    await s.runtime.audit.flush();
  });
});
