import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { mint, refusal, vaultClient } from '../support/vault.js';

interface WrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

/** Response wrapping through node-vault and raw HTTPS (docs/secrets.md, "Response wrapping"). */
describe.each(TEST_DATABASES)('node-vault response wrapping ($name)', (database) => {
  let s: TestServer;
  let root: ReturnType<typeof vaultClient>;
  const wrapTtl = (ttl: string) => ({ headers: { 'X-Vault-Wrap-TTL': ttl } });

  async function events(): Promise<Record<string, unknown>[]> {
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id').execute();
    return rows.map((r) => JSON.parse(r.payload) as Record<string, unknown>);
  }
  const lastEvent = async () => (await events()).at(-1)!;

  async function wrappedRead(path: string, ttl = '5m', client = root): Promise<WrapInfo> {
    const res = (await client.read(path, wrapTtl(ttl) as never)) as { data: unknown; wrap_info: WrapInfo };
    expect(res.data).toBeNull();
    return res.wrap_info;
  }

  const anonymous = () => vaultClient(s, '');
  const lookup = (token: string, client = anonymous()) => client.request({ path: '/sys/wrapping/lookup', method: 'POST', json: { token } });

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true });
    root = vaultClient(s);
    await root.mount({ mount_point: 'kv', type: 'kv' });
    await root.write('kv/data/app/db', { data: { password: 'wrapped-secret-value' } });
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name: 'acme' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('replaces a read with wrap_info, seals the response, and unwraps it once', async () => {
    const info = await wrappedRead('kv/data/app/db');
    expect(info).toMatchObject({ ttl: 300, creation_path: 'kv/data/app/db' });
    expect(info.token).toMatch(/^rpw\./);
    expect(Date.parse(info.creation_time)).toBe(s.clock.now().getTime());
    const stored = await s.runtime.database.db.selectFrom('vault_wrapped_responses').selectAll().where('accessor', '=', info.accessor).executeTakeFirstOrThrow();
    expect(stored.ciphertext).toMatch(/^rb1:\d+:/);
    expect(JSON.stringify(stored)).not.toContain('wrapped-secret-value');
    expect(JSON.stringify(stored)).not.toContain(info.token);
    expect(await lastEvent()).toMatchObject({ outcome: 'success', details: { wrapping_accessor: info.accessor, wrapping_token_hmac: s.runtime.auditHasher.hash(info.token), wrap_ttl: 300 } });

    expect((await lookup(info.token)).data).toEqual({ creation_path: 'kv/data/app/db', creation_ttl: 300, creation_time: info.creation_time });
    const unwrapped = await vaultClient(s, info.token).unwrap();
    expect(unwrapped.data).toMatchObject({ data: { password: 'wrapped-secret-value' }, metadata: { version: 1 } });
    expect(await lastEvent()).toMatchObject({ outcome: 'success', resource: { id: 'sys/wrapping/unwrap' }, details: { wrapping_accessor: info.accessor, creation_path: 'kv/data/app/db' } });

    // Replayed: the second unwrap and a lookup find nothing, and the refusal is audited (HMAC only).
    const replay = await refusal(vaultClient(s, info.token).unwrap());
    expect(replay).toEqual({ status: 400, body: { errors: ['wrapping token is not valid or does not exist'] } });
    expect(await lastEvent()).toMatchObject({ outcome: 'invalid', error_code: 'secrets.wrapping_token_invalid', details: { wrapping_token_hmac: s.runtime.auditHasher.hash(info.token) } });
    expect((await refusal(lookup(info.token))).status).toBe(400);
    for (const e of await events()) expect(JSON.stringify(e)).not.toMatch(/wrapped-secret-value|rpw\./);
  });

  it('unwraps for exactly one of many concurrent callers', async () => {
    const info = await wrappedRead('kv/data/app/db');
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? vaultClient(s, info.token).unwrap() : root.unwrap({ token: info.token }))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('accepts a wrapping token nowhere but unwrap and lookup', async () => {
    const info = await wrappedRead('kv/data/app/db');
    const wrapping = vaultClient(s, info.token);
    expect((await refusal(wrapping.read('kv/data/app/db'))).status).toBe(403);
    expect((await refusal(wrapping.tokenLookupSelf())).status).toBe(403);
    expect((await refusal(wrapping.write('sys/wrapping/rewrap', { token: info.token }))).status).toBe(403);
    const own = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { authorization: `Bearer ${info.token}` } });
    expect(own.statusCode).toBe(401);
    // None of that spent it.
    expect((await wrapping.unwrap()).data.data).toEqual({ password: 'wrapped-secret-value' });
  });

  it('authenticates a third-party unwrapper, spending its uses', async () => {
    const info = await wrappedRead('kv/data/app/db');
    expect((await refusal(vaultClient(s, 'rpt.not-a-real-token').unwrap({ token: info.token }))).status).toBe(403);
    const { auth } = await mint(root, { policies: ['default'], num_uses: 1 });
    const once = vaultClient(s, auth.client_token);
    expect((await once.unwrap({ token: info.token })).data.data).toEqual({ password: 'wrapped-secret-value' });
    expect(await lastEvent()).toMatchObject({ principal: { id: auth.accessor }, details: { wrapping_accessor: info.accessor } });
    expect((await refusal(once.tokenLookupSelf())).status).toBe(403);
  });

  it('expires on the injected clock', async () => {
    const info = await wrappedRead('kv/data/app/db', '60s');
    s.clock.advance(61_000);
    expect((await refusal(lookup(info.token))).status).toBe(400);
    expect(await refusal(vaultClient(s, info.token).unwrap())).toEqual({ status: 400, body: { errors: ['wrapping token is not valid or does not exist'] } });
    // The next wrap sweeps the expired ciphertext away.
    await wrappedRead('kv/data/app/db');
    expect(await s.runtime.database.db.selectFrom('vault_wrapped_responses').select('accessor').where('accessor', '=', info.accessor).execute()).toEqual([]);
  });

  it('keeps wrapping tokens in the tenant that made them', async () => {
    const info = await wrappedRead('kv/data/app/db');
    // Named into another tenant, first or third party: the same answer as an unknown token.
    expect((await refusal(vaultClient(s, info.token, 'acme').unwrap())).status).toBe(400);
    const acmeAdmin = (await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${s.adminToken}`, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } })).json() as { token: string };
    expect((await refusal(vaultClient(s, acmeAdmin.token).unwrap({ token: info.token }))).status).toBe(400);
    expect((await refusal(lookup(info.token, vaultClient(s, '', 'acme')))).status).toBe(400);
    expect((await refusal(vaultClient(s, info.token, 'no-such-tenant').unwrap())).status).toBe(400);
    // Still intact for its own tenant.
    expect((await vaultClient(s, info.token, 'default').unwrap()).data.data).toEqual({ password: 'wrapped-secret-value' });

    const acme = vaultClient(s, acmeAdmin.token);
    await acme.mount({ mount_point: 'kv', type: 'kv' });
    await acme.write('kv/data/app/db', { data: { password: 'acme-secret' } });
    const acmeInfo = await wrappedRead('kv/data/app/db', '5m', acme);
    expect((await vaultClient(s, acmeInfo.token).unwrap()).data.data).toEqual({ password: 'acme-secret' });
  });

  it('wraps a created token, with its accessor, and the token works once unwrapped', async () => {
    const res = (await root.tokenCreate({ policies: ['default'], requestOptions: wrapTtl('2m') } as never)) as { auth: unknown; wrap_info: WrapInfo };
    expect(res.auth).toBeNull();
    expect(root.token).toBe(s.adminToken);
    expect(res.wrap_info).toMatchObject({ ttl: 120, creation_path: 'auth/token/create' });
    const unwrapped = (await root.unwrap({ token: res.wrap_info.token })) as { auth: { client_token: string; accessor: string } };
    expect(unwrapped.auth.accessor).toBe(res.wrap_info.wrapped_accessor);
    expect((await vaultClient(s, unwrapped.auth.client_token).tokenLookupSelf()).data.accessor).toBe(unwrapped.auth.accessor);
  });

  it('wraps an AppRole secret ID, naming its accessor, as Vault\'s trusted-orchestrator pattern uses it', async () => {
    await root.addApproleRole({ role_name: 'ci', policies: 'default' });
    const { data: roleId } = await root.getApproleRoleId({ role_name: 'ci' });
    const res = (await root.write('auth/approle/role/ci/secret-id', {}, wrapTtl('1m') as never)) as { data: unknown; wrap_info: WrapInfo };
    expect(res.data).toBeNull();
    expect(res.wrap_info.creation_path).toBe('auth/approle/role/ci/secret-id');
    const unwrapped = (await anonymous().request({ path: '/sys/wrapping/unwrap', method: 'POST', headers: { 'X-Vault-Token': res.wrap_info.token } } as never)) as { data: { secret_id: string; secret_id_accessor: string } };
    expect(unwrapped.data.secret_id_accessor).toBe(res.wrap_info.wrapped_accessor);
    const login = await anonymous().approleLogin({ role_id: roleId.role_id, secret_id: unwrapped.data.secret_id });
    expect(login.auth.client_token).toMatch(/^rpt\./);
  });

  it('wraps arbitrary data with sys/wrapping/wrap and rewraps a token', async () => {
    expect(await refusal(root.write('sys/wrapping/wrap', { a: 'b' }))).toEqual({ status: 400, body: { errors: ['endpoint requires response wrapping to be used'] } });
    const wrapped = (await root.write('sys/wrapping/wrap', { a: 'b', n: 1 }, wrapTtl('10m') as never)) as { wrap_info: WrapInfo };
    expect(wrapped.wrap_info).toMatchObject({ ttl: 600, creation_path: 'sys/wrapping/wrap' });

    const rewrapped = (await root.write('sys/wrapping/rewrap', { token: wrapped.wrap_info.token })) as { wrap_info: WrapInfo };
    expect(rewrapped.wrap_info).toMatchObject({ ttl: 600, creation_path: 'sys/wrapping/wrap' });
    expect(rewrapped.wrap_info.token).not.toBe(wrapped.wrap_info.token);
    expect((await refusal(root.unwrap({ token: wrapped.wrap_info.token }))).status).toBe(400);
    expect((await root.unwrap({ token: rewrapped.wrap_info.token })).data).toEqual({ a: 'b', n: 1 });
  });

  it('reads one credential from mixed headers, as authentication does (Authorization before X-Vault-Token)', async () => {
    const info = await wrappedRead('kv/data/app/db');
    const unwrap = (headers: Record<string, string>, payload: Record<string, unknown> = {}) => s.app.inject({ method: 'POST', url: '/v1/sys/wrapping/unwrap', headers, payload });
    // A body token with a refused bearer token is a third-party unwrap that fails authentication,
    // whatever X-Vault-Token holds: the wrapping token in it does not make the caller first party.
    const thirdParty = await unwrap({ 'x-vault-token': info.token, authorization: 'Bearer rpt.not-a-real-token' }, { token: info.token });
    expect(thirdParty.statusCode).toBe(403);
    // Without a body token the header credential is the bearer token, not the wrapping token.
    const firstParty = await unwrap({ 'x-vault-token': info.token, authorization: `Bearer ${s.adminToken}` });
    expect(firstParty.statusCode).toBe(400);
    expect(firstParty.json()).toEqual({ errors: ['wrapping token is not valid or does not exist'] });
    // Neither spent it.
    const own = await unwrap({ 'x-vault-token': info.token });
    expect(own.statusCode).toBe(200);
    expect((own.json() as { data: unknown }).data).toEqual({ data: { password: 'wrapped-secret-value' }, metadata: expect.anything() });
  });

  it('wraps a read whose handler re-reads the store while another batch holds the writer', { timeout: 15_000 }, async () => {
    const capabilities = (headers: Record<string, string> = {}) =>
      s.app.inject({ method: 'POST', url: '/v1/sys/capabilities-self', headers: { 'x-vault-token': s.adminToken, ...headers }, payload: { paths: ['kv/data/a'] } });
    expect((await capabilities()).statusCode).toBe(200); // the authorizer's policy cache is warm
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const held = s.runtime.transact(async () => {
      entered();
      await gate;
      // The policy cache goes stale while the batch holds the writer: the wrapped request's
      // handler must re-read the policies, which it cannot do from inside a batch on SQLite.
      s.clock.advance(2_000);
    });
    await inside;
    let queued!: () => void;
    const reachedTransact = new Promise<void>((resolve) => (queued = resolve));
    const transact = s.runtime.transact;
    const spy = vi.spyOn(s.runtime, 'transact').mockImplementation((work) => {
      queued();
      return transact(work);
    });
    try {
      const wrapped = capabilities({ 'x-vault-wrap-ttl': '60s' });
      await reachedTransact;
      open();
      await held;
      const res = await wrapped;
      expect(res.statusCode).toBe(200);
      const info = (res.json() as { wrap_info: WrapInfo }).wrap_info;
      expect(info.creation_path).toBe('sys/capabilities-self');
      expect((await s.app.inject({ method: 'POST', url: '/v1/sys/wrapping/unwrap', headers: { 'x-vault-token': info.token } })).json()).toMatchObject({ data: { 'kv/data/a': expect.any(Array) } });
    } finally {
      spy.mockRestore();
    }
  });

  // Last: it moves the barrier to Shamir shares.
  it('neither wraps nor unwraps while the barrier is sealed', async () => {
    const info = await wrappedRead('kv/data/app/db');
    const init = await root.init({ secret_shares: 1, secret_threshold: 1 });
    await root.seal();
    expect(await refusal(root.tokenCreate({ requestOptions: wrapTtl('1m') } as never))).toEqual({ status: 503, body: { errors: ['Vault is sealed'] } });
    expect(root.token).toBe(s.adminToken);
    expect(await refusal(vaultClient(s, info.token).unwrap())).toEqual({ status: 503, body: { errors: ['Vault is sealed'] } });
    await root.unseal({ key: init.keys[0] });
    expect((await vaultClient(s, info.token).unwrap()).data.data).toEqual({ password: 'wrapped-secret-value' });
  });

  it('refuses a malformed wrap TTL and ignores the header where there is nothing to wrap', async () => {
    for (const ttl of ['soon', '-5', '769h']) expect((await refusal(root.read('kv/data/app/db', wrapTtl(ttl) as never))).status, ttl).toBe(400);
    await root.write('kv/data/tmp/x', { data: { v: 1 } });
    await root.delete('kv/data/tmp/x', wrapTtl('5m') as never);
    const unauthenticated = await refusal(anonymous().read('kv/data/app/db', wrapTtl('5m') as never));
    expect(unauthenticated.status).toBe(403);
  });
});
