import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type MintedToken, expectFieldRefused, lastAuditEvent, mint, mintAgainstRole, refusal, vaultClient } from '../support/vault.js';

/**
 * CIDR binding through node-vault (docs/secrets.md, "CIDR binding"): token roles' and AppRole
 * roles' `token_bound_cidrs`, AppRole's `secret_id_bound_cidrs`, children bound like their
 * parent. node-vault connects from 127.0.0.1; `app.inject` stands in for clients elsewhere.
 */
describe.each(TEST_DATABASES)('node-vault CIDR binding ($name)', (database) => {
  let s: TestServer;
  let root: ReturnType<typeof vaultClient>;

  const lastEvent = () => lastAuditEvent(s);

  const createAgainstRole = (role: string) => mintAgainstRole(root, role);

  /** `GET /v1/auth/token/lookup-self` from `remoteAddress`, as a client there would send it. */
  async function lookupSelfFrom(token: string, remoteAddress: string, namespace = 'default'): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await s.app.inject({ method: 'GET', url: '/v1/auth/token/lookup-self', headers: { 'x-vault-token': token, 'x-vault-namespace': namespace }, remoteAddress });
    return { status: r.statusCode, body: r.json() };
  }

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true });
    root = vaultClient(s);
    await root.mount({ mount_point: 'kv', type: 'kv' });
    await root.write('kv/data/app/db', { data: { password: 'p' } });
    await root.addPolicy({ name: 'app-read', rules: 'path "kv/data/app/*" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('binds the tokens of a token role to its blocks: refused from elsewhere, audited, answered from inside', async () => {
    await root.write('auth/token/roles/far', { allowed_policies: ['app-read'], token_bound_cidrs: ['10.0.0.0/8', '2001:db8::/32'] });
    expect((await root.getTokenRole({ role_name: 'far' })).data.token_bound_cidrs).toEqual(['10.0.0.0/8', '2001:db8::/32']);
    const far = await createAgainstRole('far');
    const client = vaultClient(s, far.auth.client_token);
    expect(await refusal(client.read('kv/data/app/db'))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect(await lastEvent()).toMatchObject({ outcome: 'denied', error_code: 'auth.source_address_refused', source_ip: '127.0.0.1' });
    // The same token from inside one of its blocks.
    const inside = await lookupSelfFrom(far.auth.client_token, '10.20.30.40');
    expect(inside.status).toBe(200);
    expect(inside.body.data).toMatchObject({ bound_cidrs: ['10.0.0.0/8', '2001:db8::/32'], role: 'far' });
    expect((await lookupSelfFrom(far.auth.client_token, '2001:db8::7')).status).toBe(200);
    expect((await lookupSelfFrom(far.auth.client_token, '11.0.0.1')).status).toBe(403);

    // Rampart's own API refuses it too, with its own code.
    const native = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { authorization: `Bearer ${far.auth.client_token}` }, remoteAddress: '192.0.2.1' });
    expect(native.statusCode).toBe(403);
    expect(native.json()).toMatchObject({ code: 'auth.source_address_refused' });

    await root.write('auth/token/roles/near', { allowed_policies: ['app-read'], token_bound_cidrs: '127.0.0.0/8, ::1' });
    const near = await createAgainstRole('near');
    expect((await vaultClient(s, near.auth.client_token).read('kv/data/app/db')).data.data).toEqual({ password: 'p' });
    expect((await vaultClient(s, near.auth.client_token).tokenLookupSelf()).data.bound_cidrs).toEqual(['127.0.0.0/8', '::1']);
  });

  it('binds a child to its parent\'s blocks, and a token of a role to the role\'s instead', async () => {
    await root.write('auth/token/roles/local', { allowed_policies: ['app-read'], token_bound_cidrs: ['127.0.0.1/32'] });
    await root.write('auth/token/roles/unbound', { allowed_policies: ['app-read'] });
    const parent = await createAgainstRole('local');
    const parentClient = vaultClient(s, parent.auth.client_token);
    const child = await mint(parentClient, { policies: ['app-read'] });
    const lookedUp = (await vaultClient(s, child.auth.client_token).tokenLookupSelf()).data;
    expect(lookedUp.bound_cidrs).toEqual(['127.0.0.1/32']);
    expect((await lookupSelfFrom(child.auth.client_token, '10.0.0.1')).status).toBe(403);
    // Unbound tokens show no bound_cidrs at all.
    // Rampart's own POST /v1/tokens is no way out of the binding either (for a token allowed to use it).
    await root.write('auth/token/roles/local-admin', { allowed_policies: ['admin'], token_bound_cidrs: ['127.0.0.1/32'] });
    const admin = await createAgainstRole('local-admin');
    const minted = await s.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { authorization: `Bearer ${admin.auth.client_token}` },
      payload: { ttl: '1h', policies: [] },
      remoteAddress: '127.0.0.1',
    });
    expect(minted.statusCode, minted.body).toBe(201);
    const nativeChild = (minted.json() as { token: string }).token;
    expect((await lookupSelfFrom(nativeChild, '127.0.0.1')).body.data).toMatchObject({ bound_cidrs: ['127.0.0.1/32'] });
    expect((await lookupSelfFrom(nativeChild, '10.0.0.1')).status).toBe(403);
    const free = await createAgainstRole('unbound');
    expect((await vaultClient(s, free.auth.client_token).tokenLookupSelf()).data.bound_cidrs).toBeUndefined();
    expect((await lookupSelfFrom(free.auth.client_token, '198.51.100.1')).status).toBe(200);
  });

  it('binds an orphan made by a bound token too: create-orphan, no_parent and another tenant are no way out', async () => {
    await root.write('auth/token/roles/local-sudo', { allowed_policies: ['admin'], token_bound_cidrs: ['127.0.0.1/32'] });
    const bound = await createAgainstRole('local-sudo');
    const boundClient = vaultClient(s, bound.auth.client_token);
    const orphans = [await mint(boundClient, { policies: ['admin'] }, true), await mint(boundClient, { policies: ['admin'], no_parent: true })];
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name: 'elsewhere' } });
    // Created in another tenant, the token is an orphan there, and needs no sudo.
    const own = boundClient.token;
    const elsewhere = (await vaultClient(s, bound.auth.client_token, 'elsewhere/').tokenCreate({ policies: ['default'] })) as MintedToken;
    boundClient.token = own;
    for (const [t, namespace] of [[orphans[0]!, 'default'], [orphans[1]!, 'default'], [elsewhere, 'elsewhere']] as const) {
      expect(t.auth.orphan).toBe(true);
      expect((await lookupSelfFrom(t.auth.client_token, '127.0.0.1', namespace)).status).toBe(200);
      const refused = await lookupSelfFrom(t.auth.client_token, '198.51.100.7', namespace);
      expect(refused.status).toBe(403);
      expect(await lastEvent()).toMatchObject({ error_code: 'auth.source_address_refused' });
    }
    expect((await vaultClient(s, orphans[0]!.auth.client_token).tokenLookupSelf()).data.bound_cidrs).toEqual(['127.0.0.1/32']);
  });

  it('refuses a block that is not one, naming the field, and keeps the role as it was', async () => {
    for (const [field, value] of [
      ['token_bound_cidrs', ['10.0.0.0/33']],
      ['bound_cidrs', 'example.com'],
      ['token_bound_cidrs', [42]],
    ] as const) {
      await expectFieldRefused(root.write('auth/token/roles/local', { [field]: value }), field);
    }
    expect((await root.getTokenRole({ role_name: 'local' })).data.token_bound_cidrs).toEqual(['127.0.0.1/32']);
  });

  it('lets an AppRole secret ID log in only from the role\'s blocks, without spending a use elsewhere', async () => {
    // node-vault's addApproleRole sends the fields it knows: Vault's deprecated `bound_cidr_list`
    // among them, the newer names not; the generic write sends them all.
    await root.addApproleRole({ role_name: 'edge', policies: 'app-read', secret_id_num_uses: 1, bound_cidr_list: '192.0.2.0/24' });
    expect((await root.getApproleRole({ role_name: 'edge' })).data.secret_id_bound_cidrs).toEqual(['192.0.2.0/24']);
    await root.write('auth/approle/role/edge', { secret_id_bound_cidrs: ['10.0.0.0/8'], token_bound_cidrs: ['127.0.0.1/32'] });
    const role = (await root.getApproleRole({ role_name: 'edge' })).data;
    expect(role).toMatchObject({ policies: ['app-read'], secret_id_num_uses: 1, secret_id_bound_cidrs: ['10.0.0.0/8'], token_bound_cidrs: ['127.0.0.1/32'] });
    const { data: roleId } = await root.getApproleRoleId({ role_name: 'edge' });
    const { data: issued } = await root.getApproleRoleSecret({ role_name: 'edge' });
    // From 127.0.0.1: the same answer as a wrong secret ID, and the single use is not spent.
    expect(await refusal(vaultClient(s, '').approleLogin({ role_id: roleId.role_id, secret_id: issued.secret_id }))).toEqual({
      status: 400,
      body: { errors: ['invalid role ID or secret ID'] },
    });
    expect(await lastEvent()).toMatchObject({ action: 'vault:login', outcome: 'invalid', error_code: 'secrets.login_failed' });
    const stored = await s.runtime.database.db.selectFrom('approle_secret_ids').select('uses_left').where('accessor', '=', issued.secret_id_accessor).executeTakeFirstOrThrow();
    expect(Number(stored.uses_left)).toBe(1);

    // From inside the role's blocks the login succeeds, and its token is bound to token_bound_cidrs.
    const login = await s.app.inject({ method: 'POST', url: '/v1/auth/approle/login', payload: { role_id: roleId.role_id, secret_id: issued.secret_id }, remoteAddress: '10.9.8.7' });
    expect(login.statusCode).toBe(200);
    const token = (login.json() as { auth: { client_token: string } }).auth.client_token;
    expect((await vaultClient(s, token).read('kv/data/app/db')).data.data).toEqual({ password: 'p' });
    expect((await lookupSelfFrom(token, '10.9.8.7')).status).toBe(403);
  });

  it('refuses AppRole fields it does not honour instead of ignoring them', async () => {
    for (const [field, value] of [
      ['bind_secret_id', false],
      ['token_num_uses', 3],
      ['token_type', 'batch'],
      ['secret_id_bound_cidrs', '10.0.0.0/40'],
    ] as const) {
      await expectFieldRefused(root.write('auth/approle/role/odd', { [field]: value }), field);
    }
    expect((await refusal(root.getApproleRole({ role_name: 'odd' }))).status).toBe(404);
    // Vault's defaults pass, in every form clients send them.
    await root.write('auth/approle/role/odd', { bind_secret_id: true, token_num_uses: 0, token_type: 'default', token_explicit_max_ttl: '0s', token_no_default_policy: '' });
    await root.write('auth/approle/role/odd', { bind_secret_id: 'true', token_num_uses: '0', local_secret_ids: false, token_type: '' });
    await root.write('auth/approle/role/odd/secret-id', { ttl: '0s', num_uses: 0, cidr_list: [] });
    for (const [field, value] of [
      ['cidr_list', ['10.0.0.0/8']],
      ['num_uses', 5],
      ['ttl', '1h'],
    ] as const) {
      await expectFieldRefused(root.write('auth/approle/role/odd/secret-id', { [field]: value }), field);
    }
  });
});
