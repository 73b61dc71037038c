import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { mint, refusal, vaultClient } from '../support/vault.js';

interface AuditRow {
  readonly payload: string;
}

/** sys/* and auth/token/* through node-vault against a listening server (docs/secrets.md). */
describe.each(TEST_DATABASES)('node-vault sys and tokens ($name)', (database) => {
  let s: TestServer;
  let root: ReturnType<typeof vaultClient>;

  async function lastEvent(): Promise<Record<string, unknown>> {
    const row = (await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow()) as AuditRow;
    return JSON.parse(row.payload) as Record<string, unknown>;
  }

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true });
    root = vaultClient(s);
    await root.mount({ mount_point: 'kv', type: 'kv' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('lists, tunes and unmounts engines, and refuses mounts over Rampart paths', async () => {
    const mounts = await root.mounts();
    expect(mounts.data['kv/']).toMatchObject({ type: 'kv', options: { version: '2' } });
    await root.write('sys/mounts/kv/tune', { default_lease_ttl: '1h', max_lease_ttl: '2h' });
    expect((await root.read('sys/mounts/kv/tune')).data).toMatchObject({ default_lease_ttl: 3600, max_lease_ttl: 7200 });
    for (const path of ['tokens', 'audit', 'pki', 'sys', 'auth', 'tenants']) {
      const r = await refusal(root.mount({ mount_point: path, type: 'kv' }));
      expect(r.status).toBe(400);
    }
    expect((await lastEvent()).error_code).toBe('secrets.mount_path_reserved');
    expect((await refusal(root.mount({ mount_point: 'kv', type: 'kv' }))).status).toBe(400);
    expect((await refusal(root.mount({ mount_point: 'kv/inner', type: 'kv' }))).status).toBe(400);
    expect((await refusal(root.mount({ mount_point: 'other', type: 'nosuch' }))).status).toBe(400);
    // Nested mounts racing each other: at most one of a path and its folder wins.
    const raced = await Promise.allSettled([root.mount({ mount_point: 'race', type: 'kv' }), root.mount({ mount_point: 'race/inner', type: 'kv' })]);
    expect(raced.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    await root.mount({ mount_point: 'temp', type: 'kv' });
    await root.write('temp/data/x', { data: { a: 1 } });
    await root.unmount({ mount_point: 'temp' });
    // The data went with the mount; a new mount at the path starts empty.
    await root.mount({ mount_point: 'temp', type: 'kv' });
    expect((await refusal(root.read('temp/data/x'))).status).toBe(404);
    // Any other unknown /v1/ path keeps Rampart's own 404, and Rampart's routes keep theirs.
    const nope = await s.app.inject({ method: 'GET', url: '/v1/nope', headers: { authorization: `Bearer ${s.adminToken}` } });
    expect({ status: nope.statusCode, code: nope.json().code }).toEqual({ status: 404, code: 'request.not_found' });
    const self = await s.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: { 'x-vault-token': s.adminToken } });
    expect(self.statusCode).toBe(200);
  });

  it('creates, looks up, renews and revokes tokens, children with their parent', async () => {
    await root.addPolicy({ name: 'reader', rules: 'path "auth/token/create" { capabilities = ["update"] }' });
    const parent = await mint(root, { policies: ['reader'], ttl: '1h', explicit_max_ttl: '3h' });
    expect(parent.auth).toMatchObject({ policies: ['default', 'reader'], lease_duration: 3600, renewable: true, orphan: false });
    const p = vaultClient(s, parent.auth.client_token);
    const self = await p.tokenLookupSelf();
    expect(self.data).toMatchObject({ accessor: parent.auth.accessor, ttl: 3600, explicit_max_ttl: 10800 });

    // A child of the parent, and an orphan.
    const child = await mint(p, { ttl: '30m' });
    expect(child.auth.policies).toEqual(['default', 'reader']);
    const orphan = await mint(root, { policies: ['reader'], ttl: '5h' }, true);
    expect(orphan.auth.orphan).toBe(true);

    s.clock.advance(50 * 60_000);
    const renewed = await p.tokenRenewSelf({ increment: '2h' });
    expect(renewed.auth.lease_duration).toBe(7200);
    s.clock.advance(110 * 60_000);
    // The explicit max TTL (3h from creation, 20 min away) caps the renewal.
    const capped = await p.tokenRenewSelf({ increment: '2h' });
    expect(capped.auth.lease_duration).toBe(1200);

    const looked = await root.tokenLookupAccessor({ accessor: child.auth.accessor });
    expect(looked.data.orphan).toBe(false);
    await root.tokenRevoke({ token: parent.auth.client_token });
    expect((await refusal(vaultClient(s, child.auth.client_token).tokenLookupSelf())).status).toBe(403);
    expect((await refusal(p.tokenLookupSelf())).status).toBe(403);
    // The orphan outlives the revocation.
    expect((await vaultClient(s, orphan.auth.client_token).tokenLookupSelf()).data.orphan).toBe(true);
    const event = await lastEvent();
    expect(event).toMatchObject({ outcome: 'success', http: { status: 200 } });
  });

  it('revokes Vault children also when the parent is revoked through DELETE /v1/tokens', async () => {
    const parent = await mint(root, { policies: ['reader'] });
    const child = await mint(vaultClient(s, parent.auth.client_token), { ttl: '10m' });
    const res = await s.app.inject({ method: 'DELETE', url: `/v1/tokens/${parent.auth.accessor}`, headers: { authorization: `Bearer ${s.adminToken}` } });
    expect(res.statusCode).toBe(204);
    expect((await s.runtime.stores.tokens.get(child.auth.accessor))?.revokedAt).not.toBeNull();
  });

  it('refuses to grant a policy the creator does not hold', async () => {
    const limited = await mint(root, { policies: ['token-maker'] });
    await root.addPolicy({ name: 'token-maker', rules: 'path "auth/token/create" { capabilities = ["update"] }' });
    const maker = vaultClient(s, limited.auth.client_token);
    expect((await mint(maker, { policies: ['token-maker'] })).auth.policies).toEqual(['default', 'token-maker']);
    const r = await refusal(mint(maker, { policies: ['admin'] }));
    expect(r).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect(await lastEvent()).toMatchObject({ outcome: 'denied', error_code: 'authz.denied', action: 'token:grant-role' });
  });

  it('enforces ACL policies from sys/policy, deny winning', async () => {
    await root.addPolicy({
      name: 'app',
      rules: [
        'path "kv/data/app/*" { capabilities = ["create", "read", "update"] }',
        'path "kv/data/app/secret-*" { capabilities = ["deny"] }',
        'path "kv/metadata/+/" { capabilities = ["list"] }',
      ].join('\n'),
    });
    expect((await root.getPolicy({ name: 'app' })).rules).toContain('kv/data/app/*');
    expect((await root.policies()).policies).toContain('app');
    const token = (await mint(root, { policies: ['app'] })).auth.client_token;
    const app = vaultClient(s, token);
    await app.write('kv/data/app/config', { data: { ok: true } });
    expect((await app.read('kv/data/app/config')).data.data).toEqual({ ok: true });
    expect(await refusal(app.write('kv/data/app/secret-key', { data: { no: 1 } }))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect(await refusal(app.read('kv/data/other'))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    expect((await app.list('kv/metadata/app/')).data.keys).toEqual(['config']);
    expect((await refusal(app.list('kv/metadata/app/config/x/'))).status).toBe(403);
    expect((await refusal(app.delete('kv/metadata/app/config'))).status).toBe(403);
    const denied = await lastEvent();
    expect(denied).toMatchObject({ outcome: 'denied', error_code: 'authz.denied', action: 'vault:delete', resource: { type: 'Rampart::VaultPath', id: 'kv/metadata/app/config' } });

    const caps = await app.write('sys/capabilities-self', { paths: ['kv/data/app/x', 'kv/data/app/secret-1', 'kv/data/other'] });
    expect(caps.data).toMatchObject({ 'kv/data/app/x': ['create', 'read', 'update'], 'kv/data/app/secret-1': ['deny'], 'kv/data/other': ['deny'] });

    // Removing the policy removes the access.
    await root.removePolicy({ name: 'app' });
    expect((await refusal(app.read('kv/data/app/config'))).status).toBe(403);
    expect((await refusal(root.addPolicy({ name: 'bad', rules: 'path "x" { capabilities = ["fly"] }' }))).body).toEqual({
      errors: ['policy line 1, column 28: unknown capability "fly"'],
    });
    expect((await refusal(root.addPolicy({ name: 'admin', rules: '' }))).status).toBe(400);
  });

  it('lets the most specific path decide across a token’s policies, as Vault does', async () => {
    await root.addPolicy({ name: 'team', rules: 'path "kv/data/*" { capabilities = ["create", "read", "update"] }' });
    await root.addPolicy({ name: 'dropbox', rules: 'path "kv/data/dropbox/*" { capabilities = ["create"] }' });
    const token = (await mint(root, { policies: ['team', 'dropbox'] })).auth.client_token;
    const both = vaultClient(s, token);
    await both.write('kv/data/dropbox/report', { data: { v: 1 } });
    // `team` alone would grant read; the narrower `dropbox` pattern decides and grants create only.
    expect(await refusal(both.read('kv/data/dropbox/report'))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    await both.write('kv/data/shared', { data: { v: 2 } });
    expect((await both.read('kv/data/shared')).data.data).toEqual({ v: 2 });
    const caps = await both.write('sys/capabilities-self', { paths: ['kv/data/dropbox/report', 'kv/data/shared'] });
    expect(caps.data).toMatchObject({ 'kv/data/dropbox/report': ['create'], 'kv/data/shared': ['create', 'read', 'update'] });
    // A token with `team` only reads it.
    const teamOnly = vaultClient(s, (await mint(root, { policies: ['team'] })).auth.client_token);
    expect((await teamOnly.read('kv/data/dropbox/report')).data.data).toEqual({ v: 1 });
  });

  it('serializes concurrent policy writes into successive policy versions', async () => {
    const names = ['c1', 'c2', 'c3', 'c4', 'c5'];
    await Promise.all(names.map((name) => root.addPolicy({ name, rules: `path "kv/data/${name}" { capabilities = ["read"] }` })));
    const active = await s.runtime.stores.policies.active('default', 'rampart');
    for (const name of names) expect(active?.policies['vault-acl.cedar']).toContain(`vault-acl/${name}/0`);
    await Promise.all(names.map((name) => root.removePolicy({ name })));
    expect((await s.runtime.stores.policies.active('default', 'rampart'))?.policies['vault-acl.cedar']).not.toContain('vault-acl/c1/');
  });

  it('hashes with the audit salt like POST /v1/audit/hash', async () => {
    const r = await root.write('sys/audit-hash/file', { input: 'secret-value' });
    expect(r.data.hash).toBe(s.runtime.auditHasher.hash('secret-value'));
  });

  it('rotates the keyring; old versions stay readable, new writes use the new term', async () => {
    await root.write('kv/data/rot', { data: { v: 'before' } });
    await root.write('sys/rotate', {});
    expect((await root.read('sys/key-status')).data.term).toBe(2);
    await root.write('kv/data/rot', { data: { v: 'after' } });
    expect((await root.read('kv/data/rot?version=1')).data.data).toEqual({ v: 'before' });
    const rows = await s.runtime.database.db.selectFrom('kv_versions').select(['version', 'ciphertext']).where('path', '=', 'rot').orderBy('version').execute();
    expect(rows.map((r) => r.ciphertext?.split(':')[1])).toEqual(['1', '2']);
  });

  it('initializes with Shamir shares, seals (503 on secret paths, audited) and unseals', async () => {
    expect(await root.initialized()).toEqual({ initialized: false });
    const init = await root.init({ secret_shares: 5, secret_threshold: 3 });
    expect(init.keys).toHaveLength(5);
    expect((await refusal(root.init({ secret_shares: 1, secret_threshold: 1 }))).status).toBe(400);
    await root.write('kv/data/sealed-test', { data: { v: 1 } });

    await root.seal();
    expect(await root.status()).toMatchObject({ sealed: true, t: 3, n: 5, progress: 0, type: 'shamir' });
    expect(await refusal(root.read('kv/data/sealed-test'))).toEqual({ status: 503, body: { errors: ['Vault is sealed'] } });
    expect(await lastEvent()).toMatchObject({ outcome: 'failed', error_code: 'secrets.sealed', http: { status: 503 } });
    expect((await root.health()).sealed).toBe(true);

    // Wrong shares: refused once the threshold is reached, progress reset.
    const wrong = init.keys.map((k: string) => (k.slice(0, -2) + (k.endsWith('00') ? '01' : '00')));
    await root.unseal({ key: wrong[0] });
    await root.unseal({ key: wrong[1] });
    expect((await refusal(root.unseal({ key: wrong[2] }))).status).toBe(400);
    expect((await root.status()).progress).toBe(0);
    expect((await refusal(root.unseal({ key: 'not-a-share' }))).status).toBe(400);

    expect((await root.unseal({ key: init.keys[0] })).progress).toBe(1);
    expect((await root.unseal({ key: init.keys[0] })).progress).toBe(1);
    await root.unseal({ key: init.keys_base64[3] });
    const done = await root.unseal({ key: init.keys[4] });
    expect(done).toMatchObject({ sealed: false, progress: 0 });
    expect((await root.read('kv/data/sealed-test')).data.data).toEqual({ v: 1 });
  });

  it('keeps sealing an operator action', async () => {
    await root.write('sys/policy/sealer', { policy: 'path "sys/seal" { capabilities = ["update", "sudo"] }' });
    const t = await mint(root, { policies: ['sealer'] });
    expect((await refusal(vaultClient(s, t.auth.client_token).seal())).status).toBe(403);
    expect(s.runtime.secretsSeal.sealed).toBe(false);
  });
});
