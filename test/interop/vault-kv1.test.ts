import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { mint, refusal, vaultClient } from '../support/vault.js';

/** KV version 1 through node-vault against a listening server (docs/secrets.md, "KV version 1"). */
describe.each(TEST_DATABASES)('node-vault KV v1 ($name)', (database) => {
  let s: TestServer;
  let vault: ReturnType<typeof vaultClient>;

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true });
    vault = vaultClient(s);
    await vault.mount({ mount_point: 'old', type: 'kv', options: { version: '1' } });
    await vault.mount({ mount_point: 'legacy', type: 'kv-v1' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('mounts version 1 as type kv, by option or by the kv-v1 alias', async () => {
    const mounts = await vault.mounts();
    expect(mounts['old/']).toMatchObject({ type: 'kv', options: { version: '1' } });
    expect(mounts['legacy/']).toMatchObject({ type: 'kv', options: { version: '1' } });
    expect(await refusal(vault.mount({ mount_point: 'bad', type: 'kv', options: { version: '3' } }))).toEqual({ status: 400, body: { errors: ['options.version must be "1" or "2"'] } });
  });

  it('writes, reads, replaces and deletes a secret, with Vault lease durations', async () => {
    await vault.write('old/app/db', { user: 'app', password: 'one', ttl: '1h' });
    const read = await vault.read('old/app/db');
    expect(read).toMatchObject({ data: { user: 'app', password: 'one', ttl: '1h' }, lease_id: '', lease_duration: 3600, renewable: false, mount_type: 'kv' });
    await vault.write('old/app/db', { password: 'two' });
    const replaced = await vault.read('old/app/db');
    expect(replaced.data).toEqual({ password: 'two' });
    expect(replaced.lease_duration).toBe(768 * 3600);
    await vault.delete('old/app/db');
    expect(await refusal(vault.read('old/app/db'))).toEqual({ status: 404, body: { errors: [] } });
    await vault.delete('old/app/db'); // nothing there: still 204, as Vault
  });

  it('refuses bad input', async () => {
    expect(await refusal(vault.write('old/empty', {}))).toEqual({ status: 400, body: { errors: ['missing data fields'] } });
    expect(await refusal(vault.write('old/bad-ttl', { ttl: 'soon' }))).toMatchObject({ status: 400 });
    expect((await refusal(vault.request({ path: '/old/a/../b', method: 'GET' }))).status).toBeGreaterThanOrEqual(400);
    expect((await refusal(vault.update('old/x', { a: 1 }))).status).toBe(405);
  });

  it('lists keys and folders, with pages', async () => {
    for (const key of ['list/a', 'list/b', 'list/c/one', 'list/c/two', 'list/d']) await vault.write(`old/${key}`, { v: key });
    expect((await vault.list('old/list/')).data.keys).toEqual(['a', 'b', 'c/', 'd']);
    expect((await vault.list('old/list')).data.keys).toEqual(['a', 'b', 'c/', 'd']);
    expect((await vault.list('old/list/c')).data.keys).toEqual(['one', 'two']);
    expect((await vault.read('old/list/?list=true&limit=2')).data.keys).toEqual(['a', 'b']);
    expect((await vault.read('old/list/?list=true&limit=2&after=b')).data.keys).toEqual(['c/', 'd']);
    expect(await refusal(vault.list('old/nothing/'))).toEqual({ status: 404, body: { errors: [] } });
  });

  it('lists a folder named with astral characters, and nothing beside it', async () => {
    for (const key of ['🔑/a', '🔑/b/x', '🔑/b/y', '🔑/😀', '🔑0', '🔑x/z', '🔒/q']) await vault.write(`old/${key}`, { v: key });
    expect((await vault.list('old/🔑/')).data.keys).toEqual(['a', 'b/', '😀']);
    expect((await vault.read('old/🔑/?list=true&limit=1&after=a')).data.keys).toEqual(['b/']);
    expect((await vault.read(`old/🔑/?list=true&after=${encodeURIComponent('b/')}`)).data.keys).toEqual(['😀']);
  });

  it('needs create for a new path and update to replace one (existence check)', async () => {
    await vault.write('old/acl/existing', { v: '1' });
    await vault.addPolicy({ name: 'kv1-create', rules: 'path "old/acl/*" { capabilities = ["create", "read"] }' });
    await vault.addPolicy({ name: 'kv1-update', rules: 'path "old/acl/*" { capabilities = ["update", "read"] }' });
    const creator = vaultClient(s, (await mint(vault, { policies: ['kv1-create'] })).auth.client_token);
    const updater = vaultClient(s, (await mint(vault, { policies: ['kv1-update'] })).auth.client_token);
    await creator.write('old/acl/new', { v: '2' });
    expect((await refusal(creator.write('old/acl/existing', { v: '3' }))).status).toBe(403);
    await updater.write('old/acl/existing', { v: '3' });
    expect((await refusal(updater.write('old/acl/fresh', { v: '4' }))).status).toBe(403);
    expect((await updater.read('old/acl/existing')).data).toEqual({ v: '3' });
    expect((await refusal(updater.list('old/acl/'))).status).toBe(403);
  });

  it('stores values only as barrier ciphertext bound to their path and tenant', async () => {
    await vault.write('old/sealed/a', { password: 'alpha-secret' });
    await vault.write('old/sealed/b', { password: 'beta-secret' });
    const rows = await s.runtime.database.db.selectFrom('kv1_entries').selectAll().where('path', 'like', 'sealed/%').orderBy('path').execute();
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(r.ciphertext).toMatch(/^rb1:\d+:/);
      expect(r.ciphertext).not.toContain('secret');
    }
    // A ciphertext moved to another path does not open there.
    await s.runtime.database.db.updateTable('kv1_entries').set({ ciphertext: rows[0]!.ciphertext }).where('path', '=', 'sealed/b').execute();
    expect((await refusal(vault.read('old/sealed/b'))).status).toBe(500);
  });

  it('keeps tenants apart and purges the mount on unmount', async () => {
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name: 'acme' } });
    const acme = vaultClient(s, s.adminToken, 'acme');
    await acme.mount({ mount_point: 'old', type: 'kv-v1' });
    await vault.write('old/shared', { owner: 'default' });
    expect(await refusal(acme.read('old/shared'))).toEqual({ status: 404, body: { errors: [] } });
    await acme.write('old/shared', { owner: 'acme' });
    expect((await vault.read('old/shared')).data).toEqual({ owner: 'default' });
    expect((await acme.read('old/shared')).data).toEqual({ owner: 'acme' });

    await vault.unmount({ mount_point: 'legacy' });
    await vault.write('old/keep', { v: '1' });
    const before = await s.runtime.database.db.selectFrom('kv1_entries').select('mount').distinct().execute();
    await vault.unmount({ mount_point: 'old' });
    const after = await s.runtime.database.db.selectFrom('kv1_entries').select('mount').distinct().execute();
    expect(after.length).toBe(before.length - 1);
    expect((await acme.read('old/shared')).data).toEqual({ owner: 'acme' });
  });
});
