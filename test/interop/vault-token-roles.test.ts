import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { expectFieldRefused, lastAuditEvent, mint, mintAgainstRole, refusal, vaultClient } from '../support/vault.js';

/** Token `num_uses` and token roles through node-vault (docs/secrets.md, "Tokens"). */
describe.each(TEST_DATABASES)('node-vault token roles and num_uses ($name)', (database) => {
  let s: TestServer;
  let root: ReturnType<typeof vaultClient>;

  const lastEvent = () => lastAuditEvent(s);

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true });
    root = vaultClient(s);
    await root.mount({ mount_point: 'kv', type: 'kv' });
    await root.write('kv/data/app/db', { data: { password: 'p' } });
    await root.addPolicy({ name: 'app-read', rules: 'path "kv/data/app/*" { capabilities = ["read"] }' });
    await root.addPolicy({ name: 'ops', rules: 'path "kv/data/ops/*" { capabilities = ["read"] }' });
    await root.addPolicy({
      name: 'delegate',
      rules: ['path "auth/token/roles/*" { capabilities = ["create", "read", "update", "delete"] }', 'path "auth/token/create/*" { capabilities = ["update"] }'].join('\n'),
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('spends one use per request, shows what is left, and refuses the token once they are spent', async () => {
    const { auth } = await mint(root, { policies: ['app-read'], num_uses: 3 });
    expect(auth).toMatchObject({ num_uses: 3 });
    const app = vaultClient(s, auth.client_token);
    expect((await app.tokenLookupSelf()).data).toMatchObject({ num_uses: 2, accessor: auth.accessor });
    expect((await app.read('kv/data/app/db')).data.data).toEqual({ password: 'p' });
    expect((await root.tokenLookupAccessor({ accessor: auth.accessor })).data.num_uses).toBe(1);
    expect((await app.read('kv/data/app/db')).data.data).toEqual({ password: 'p' });
    // Replay after exhaustion: refused as Vault refuses it, audited with the precise code.
    expect(await refusal(app.read('kv/data/app/db'))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect(await lastEvent()).toMatchObject({ outcome: 'denied', error_code: 'auth.token_exhausted' });
    expect((await refusal(root.tokenLookupAccessor({ accessor: auth.accessor }))).status).toBe(404);
  });

  it('lets exactly num_uses of many parallel requests through', async () => {
    const { auth } = await mint(root, { policies: ['app-read'], num_uses: 4 });
    const app = vaultClient(s, auth.client_token);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => app.read('kv/data/app/db')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect((r.reason as { response: { statusCode: number } }).response.statusCode).toBe(403);
    }
  });

  it('refuses tokens created by a use-limited token, on either API', async () => {
    // An admin token, so that only the use limit can be what refuses it.
    const { auth } = await mint(root, { policies: ['admin'], num_uses: 5 });
    const limited = vaultClient(s, auth.client_token);
    expect(await refusal(mint(limited, { policies: ['app-read'] }))).toEqual({ status: 400, body: { errors: ['restricted use token cannot generate child tokens'] } });
    const viaRampart = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${auth.client_token}` }, payload: { policies: [] } });
    expect([viaRampart.statusCode, viaRampart.json().code]).toEqual([400, 'token.use_limited']);
    expect(await refusal(mint(root, { num_uses: -1 }))).toMatchObject({ status: 400 });
  });

  it('creates, reads, lists and deletes token roles, and creates tokens against them', async () => {
    await root.addTokenRole({ role_name: 'web', allowed_policies: 'app-read', orphan: true, renewable: false, path_suffix: 'v01' });
    await root.write('auth/token/roles/web', { token_num_uses: 2, token_explicit_max_ttl: '2h' });
    expect((await root.getTokenRole({ role_name: 'web' })).data).toMatchObject({
      name: 'web',
      allowed_policies: ['app-read'],
      disallowed_policies: [],
      orphan: true,
      renewable: false,
      path_suffix: 'v01',
      token_num_uses: 2,
      token_explicit_max_ttl: 7200,
      token_period: 0,
      token_type: 'default-service',
    });
    await root.addTokenRole({ role_name: 'batch-jobs', disallowed_policies: 'admin' });
    expect((await root.tokenRoles()).data.keys).toEqual(['batch-jobs', 'web']);

    const made = await mintAgainstRole(root, 'web', { ttl: '5h', num_uses: 9 });
    expect(made.auth).toMatchObject({ policies: ['app-read', 'default'], orphan: true, renewable: false, lease_duration: 7200, num_uses: 2 });
    const looked = (await root.tokenLookupAccessor({ accessor: made.auth.accessor })).data;
    expect(looked).toMatchObject({ path: 'auth/token/create/web/v01', role: 'web', num_uses: 2, orphan: true, explicit_max_ttl: 7200 });
    expect((await vaultClient(s, made.auth.client_token).read('kv/data/app/db')).data.data).toEqual({ password: 'p' });
    expect(await lastEvent()).toMatchObject({ outcome: 'success' });

    await root.removeTokenRole({ role_name: 'web' });
    expect((await refusal(root.getTokenRole({ role_name: 'web' }))).status).toBe(404);
    expect(await refusal(mintAgainstRole(root, 'web'))).toEqual({ status: 400, body: { errors: ['unknown role web'] } });
  });

  it('refuses what it cannot honour instead of ignoring it', async () => {
    for (const [field, value] of [
      ['allowed_entity_aliases', ['web-*']],
      ['allowed_policies_glob', 'app-*'],
      ['token_ttl', '1h'],
      ['token_type', 'batch'],
    ] as const) {
      await expectFieldRefused(root.write('auth/token/roles/odd', { [field]: value }), field);
    }
    expect((await refusal(root.getTokenRole({ role_name: 'odd' }))).status).toBe(404);
    expect((await refusal(root.write('auth/token/roles/odd', { path_suffix: '../x' }))).status).toBe(400);
  });

  it('lets a role delegate only what its writer could grant (escalation attempts)', async () => {
    const { auth } = await mint(root, { policies: ['delegate', 'app-read'] });
    const delegator = vaultClient(s, auth.client_token);
    // Writing a role that hands out a policy the writer could not grant is a token:grant-role decision.
    expect(await refusal(delegator.write('auth/token/roles/escalate', { allowed_policies: ['admin'] }))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect(await lastEvent()).toMatchObject({ action: 'token:grant-role', outcome: 'denied' });
    expect((await refusal(delegator.write('auth/token/roles/escalate', { allowed_policies: ['ops'] }))).status).toBe(403);

    await delegator.write('auth/token/roles/reader', { allowed_policies: ['app-read'] });
    const reader = await mintAgainstRole(delegator, 'reader');
    expect(reader.auth.policies).toEqual(['app-read', 'default']);
    // Asking a role for more than it allows, or for what it disallows, is refused.
    expect(await refusal(mintAgainstRole(delegator, 'reader', { policies: ['admin'] }))).toMatchObject({ status: 400 });
    await root.write('auth/token/roles/no-admin', { disallowed_policies: ['admin'] });
    expect(await refusal(mintAgainstRole(root, 'no-admin', { policies: ['admin'] }))).toEqual({ status: 400, body: { errors: ['token policy "admin" is disallowed by this role'] } });
    // A role with only a disallowed list delegates nothing: other policies follow the ordinary rule.
    expect((await refusal(mintAgainstRole(delegator, 'no-admin', { policies: ['ops'] }))).status).toBe(403);
  });
});
