import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { makeCsr } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { lastAuditEvent, refusal, vaultClient } from '../support/vault.js';

/** AppRole and cert login, X-Vault-Namespace as tenants, through node-vault (docs/secrets.md, "Auth"). */
describe.each(TEST_DATABASES)('node-vault auth methods ($name)', (database) => {
  let s: TestServer;
  let root: ReturnType<typeof vaultClient>;

  const lastEvent = () => lastAuditEvent(s);

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true });
    root = vaultClient(s);
    await root.mount({ mount_point: 'kv', type: 'kv' });
    await root.addPolicy({ name: 'app-read', rules: 'path "kv/data/app/*" { capabilities = ["read"] }' });
    await root.write('kv/data/app/db', { data: { password: 'p' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  // First: TLS checks the SVID's validity against the real time, and later tests move the manual clock ahead.
  it('logs in with a Rampart SVID over mTLS (auth/cert)', async () => {
    const csr = await makeCsr();
    const signed = await s.app.inject({
      method: 'POST',
      url: '/v1/pki/sign',
      headers: { authorization: `Bearer ${s.adminToken}` },
      payload: { csr: csr.pem, spiffe_id: 'spiffe://default.rampart.local/app/web', ttl: '1h' },
    });
    expect(signed.statusCode).toBe(200);
    // The leaf and its intermediate: the server trusts the roots only.
    const issued = signed.json() as { certificate: string; issuing_ca: string };
    const cert = `${issued.certificate}${issued.issuing_ca}`;
    await root.write('auth/cert/certs/web', { allowed_uri_sans: ['spiffe://default.rampart.local/app/*'], token_policies: ['app-read'], token_ttl: '15m' });
    const workload = vaultClient(s, '');
    const mtls = { requestOptions: { cert, key: csr.keyPem, ca: s.runtime.trustBundlePem } };
    const res = (await workload.request({ path: '/auth/cert/login', method: 'POST', json: {}, ...mtls.requestOptions } as never)) as { auth: { client_token: string; policies: string[]; lease_duration: number } };
    expect(res.auth).toMatchObject({ policies: ['app-read', 'default'], lease_duration: 900 });
    expect((await vaultClient(s, res.auth.client_token).read('kv/data/app/db')).data.data).toEqual({ password: 'p' });

    await root.write('auth/cert/certs/web', { allowed_uri_sans: ['spiffe://default.rampart.local/other'], token_policies: ['app-read'] });
    const refused = await refusal(workload.request({ path: '/auth/cert/login', method: 'POST', json: {}, ...mtls.requestOptions } as never));
    expect(refused).toEqual({ status: 400, body: { errors: ['no cert role accepts this certificate'] } });
  });

  it('logs in with AppRole; secret IDs are hashed, limited in uses and expire', async () => {
    await root.addApproleRole({ role_name: 'web', policies: 'app-read', secret_id_num_uses: 2, secret_id_ttl: 600, token_ttl: 1200 });
    const { data: roleId } = await root.getApproleRoleId({ role_name: 'web' });
    const { data: issued } = await root.getApproleRoleSecret({ role_name: 'web' });
    const stored = await s.runtime.database.db.selectFrom('approle_secret_ids').selectAll().executeTakeFirstOrThrow();
    expect(stored.secret_hash).not.toContain(issued.secret_id.split('.')[1]);
    expect(JSON.stringify(stored)).not.toContain(issued.secret_id);

    const login = vaultClient(s, '');
    const first = await login.approleLogin({ role_id: roleId.role_id, secret_id: issued.secret_id });
    expect(first.auth).toMatchObject({ policies: ['app-read', 'default'], lease_duration: 1200, metadata: { role_name: 'web' } });
    expect(await lastEvent()).toMatchObject({ action: 'vault:login', outcome: 'success', principal: null, details: { role: 'web' } });
    const app = vaultClient(s, first.auth.client_token);
    expect((await app.read('kv/data/app/db')).data.data).toEqual({ password: 'p' });
    expect((await refusal(app.write('kv/data/app/db', { data: {} }))).status).toBe(403);

    await vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: issued.secret_id });
    // Two uses, both spent: the third login is refused, and the secret ID is gone.
    const third = await refusal(vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: issued.secret_id }));
    expect(third).toEqual({ status: 400, body: { errors: ['invalid role ID or secret ID'] } });
    expect(await lastEvent()).toMatchObject({ action: 'vault:login', outcome: 'invalid', error_code: 'secrets.login_failed' });
    expect(await s.runtime.database.db.selectFrom('approle_secret_ids').selectAll().execute()).toEqual([]);

    const { data: fresh } = await root.getApproleRoleSecret({ role_name: 'web' });
    const wrong = `${fresh.secret_id.slice(0, -1)}${fresh.secret_id.endsWith('A') ? 'B' : 'A'}`;
    expect((await refusal(vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: wrong }))).status).toBe(400);
    expect((await refusal(vaultClient(s, '').approleLogin({ role_id: 'nope', secret_id: fresh.secret_id }))).status).toBe(400);
    // An unknown namespace fails like any other login failure: it does not confirm tenant names.
    expect(await refusal(vaultClient(s, '', 'no-such-tenant').approleLogin({ role_id: roleId.role_id, secret_id: fresh.secret_id }))).toEqual({
      status: 400,
      body: { errors: ['invalid role ID or secret ID'] },
    });
    s.clock.advance(11 * 60_000);
    expect((await refusal(vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: fresh.secret_id }))).status).toBe(400);
  });

  it('looks up and destroys secret IDs, by secret or accessor', async () => {
    await root.addApproleRole({ role_name: 'rot', policies: 'app-read' });
    const { data: roleId } = await root.getApproleRoleId({ role_name: 'rot' });
    const { data: a } = await root.getApproleRoleSecret({ role_name: 'rot' });
    const { data: b } = await root.getApproleRoleSecret({ role_name: 'rot' });
    expect((await root.write('auth/approle/role/rot/secret-id/lookup', { secret_id: a.secret_id })).data).toMatchObject({ secret_id_accessor: a.secret_id_accessor });
    expect((await refusal(root.write('auth/approle/role/rot/secret-id/lookup', { secret_id: `${a.secret_id.slice(0, -1)}x` }))).status).toBe(404);
    expect((await refusal(root.read('auth/approle/role/rot/secret-id/destroy'))).status).toBe(405);
    await root.write('auth/approle/role/rot/secret-id/destroy', { secret_id: a.secret_id });
    await root.write('auth/approle/role/rot/secret-id-accessor/destroy', { secret_id_accessor: b.secret_id_accessor });
    for (const secret of [a, b]) {
      expect((await refusal(vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: secret.secret_id }))).status).toBe(400);
    }
    expect(Object.keys((await root.auths()).data)).toEqual(['token/', 'approle/', 'cert/']);
  });

  it('spends a use limit exactly once under concurrent logins', async () => {
    await root.addApproleRole({ role_name: 'once', policies: 'app-read', secret_id_num_uses: 1 });
    const { data: roleId } = await root.getApproleRoleId({ role_name: 'once' });
    const { data: issued } = await root.getApproleRoleSecret({ role_name: 'once' });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: issued.secret_id })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('maps X-Vault-Namespace to the tenant', async () => {
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name: 'acme' } });
    const acme = vaultClient(s, s.adminToken, 'acme/');
    await acme.mount({ mount_point: 'team', type: 'kv' });
    await acme.write('team/data/x', { data: { tenant: 'acme' } });
    expect((await acme.read('team/data/x')).data.data).toEqual({ tenant: 'acme' });
    expect(await lastEvent()).toMatchObject({ tenant: 'acme', action: 'vault:read' });
    // Another namespace sees nothing of it: no such mount there.
    expect((await refusal(root.read('team/data/x'))).status).toBe(404);
    // An acme token is confined to acme.
    const acmeToken = (await acme.tokenCreate({ policies: ['admin'] })).auth.client_token as string;
    expect((await refusal(vaultClient(s, acmeToken).read('kv/data/app/db', { headers: { 'X-Vault-Namespace': 'default' } }))).status).toBe(403);
    expect((await refusal(vaultClient(s, acmeToken, 'default').read('kv/data/app/db'))).status).toBe(403);
  });
});
