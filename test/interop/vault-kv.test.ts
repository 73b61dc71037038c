import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { refusal, vaultClient } from '../support/vault.js';

/** KV v2 through the node-vault client against a listening server (docs/secrets.md, "KV v2"). */
describe.each(TEST_DATABASES)('node-vault KV v2 ($name)', (database) => {
  let s: TestServer;
  let vault: ReturnType<typeof vaultClient>;

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true });
    vault = vaultClient(s);
    await vault.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('writes, reads and versions a secret', async () => {
    const w1 = await vault.write('secret/data/app/db', { data: { user: 'app', password: 'one' } });
    expect(w1.data).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
    const w2 = await vault.write('secret/data/app/db', { data: { user: 'app', password: 'two' } });
    expect(w2.data.version).toBe(2);
    const latest = await vault.read('secret/data/app/db');
    expect(latest.data).toMatchObject({ data: { user: 'app', password: 'two' }, metadata: { version: 2 } });
    const first = await vault.read('secret/data/app/db?version=1');
    expect(first.data.data).toEqual({ user: 'app', password: 'one' });
    const meta = await vault.read('secret/metadata/app/db');
    expect(meta.data).toMatchObject({ current_version: 2, oldest_version: 1 });
    expect(Object.keys(meta.data.versions)).toEqual(['1', '2']);
  });

  it('stores the data only as barrier ciphertext', async () => {
    const rows = await s.runtime.database.db.selectFrom('kv_versions').select('ciphertext').execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.ciphertext).toMatch(/^rb1:\d+:/);
      expect(r.ciphertext).not.toContain('password');
    }
  });

  it('answers 404 with an empty errors list for a missing secret', async () => {
    expect(await refusal(vault.read('secret/data/nope'))).toEqual({ status: 404, body: { errors: [] } });
  });

  it('refuses a check-and-set mismatch and changes nothing', async () => {
    const r = await refusal(vault.write('secret/data/app/db', { options: { cas: 1 }, data: { password: 'stale' } }));
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ errors: ['check-and-set parameter did not match the current version'] });
    expect((await vault.read('secret/data/app/db')).data.metadata.version).toBe(2);
    const ok = await vault.write('secret/data/app/db', { options: { cas: 2 }, data: { password: 'three' } });
    expect(ok.data.version).toBe(3);
    const create = await refusal(vault.write('secret/data/app/db', { options: { cas: 0 }, data: { password: 'x' } }));
    expect(create.status).toBe(400);
  });

  it('soft-deletes, undeletes and destroys versions', async () => {
    await vault.write('secret/data/life', { data: { v: 1 } });
    await vault.write('secret/data/life', { data: { v: 2 } });
    await vault.delete('secret/data/life');
    const deleted = await refusal(vault.read('secret/data/life'));
    expect(deleted.status).toBe(404);
    expect((deleted.body as { data: { data: unknown; metadata: { deletion_time: string } } }).data.data).toBeNull();
    await vault.write('secret/undelete/life', { versions: [2] });
    expect((await vault.read('secret/data/life')).data.data).toEqual({ v: 2 });
    await vault.write('secret/destroy/life', { versions: [1] });
    const destroyed = await refusal(vault.read('secret/data/life?version=1'));
    expect(destroyed.status).toBe(404);
    expect((destroyed.body as { data: { metadata: { destroyed: boolean } } }).data.metadata.destroyed).toBe(true);
    // A destroyed version cannot be undeleted.
    await vault.write('secret/undelete/life', { versions: [1] });
    expect((await refusal(vault.read('secret/data/life?version=1'))).status).toBe(404);
    const row = await s.runtime.database.db.selectFrom('kv_versions').select('ciphertext').where('path', '=', 'life').where('version', '=', 1).executeTakeFirstOrThrow();
    expect(row.ciphertext).toBeNull();
  });

  it('patches with JSON merge patch', async () => {
    await vault.write('secret/data/patchme', { data: { a: 1, b: { c: 2, d: 3 } } });
    const patched = await vault.update('secret/data/patchme', { data: { b: { c: null, e: 5 }, f: 'new' } });
    expect(patched.data.version).toBe(2);
    expect((await vault.read('secret/data/patchme')).data.data).toEqual({ a: 1, b: { d: 3, e: 5 }, f: 'new' });
  });

  it('lists keys and folders, paginated on request', async () => {
    for (const name of ['k1', 'k2', 'k3', 'sub/x']) await vault.write(`secret/data/list/${name}`, { data: { n: name } });
    expect((await vault.list('secret/metadata/list/')).data.keys).toEqual(['k1', 'k2', 'k3', 'sub/']);
    expect((await vault.read('secret/metadata/list/?list=true&limit=2')).data.keys).toEqual(['k1', 'k2']);
    expect((await vault.read('secret/metadata/list/?list=true&after=k2&limit=2')).data.keys).toEqual(['k3', 'sub/']);
  });

  it('reads subkeys and enforces config (max_versions, cas_required)', async () => {
    await vault.write('secret/data/deep', { data: { a: { b: { c: 1 } }, z: 2 } });
    expect((await vault.read('secret/subkeys/deep')).data.subkeys).toEqual({ a: { b: { c: null } }, z: null });
    expect((await vault.read('secret/subkeys/deep?depth=1')).data.subkeys).toEqual({ a: null, z: null });
    await vault.write('secret/config', { max_versions: 2, cas_required: true });
    expect((await vault.read('secret/config')).data).toMatchObject({ max_versions: 2, cas_required: true });
    expect((await refusal(vault.write('secret/data/deep', { data: { x: 1 } }))).status).toBe(400);
    await vault.write('secret/data/deep', { options: { cas: 1 }, data: { x: 2 } });
    await vault.write('secret/data/deep', { options: { cas: 2 }, data: { x: 3 } });
    const meta = await vault.read('secret/metadata/deep');
    expect(meta.data).toMatchObject({ current_version: 3, oldest_version: 2 });
    expect(Object.keys(meta.data.versions)).toEqual(['2', '3']);
    await vault.write('secret/config', { max_versions: 0, cas_required: false });
  });

  it('refuses bad input in Vault shape, audited, with nothing changed', async () => {
    await vault.write('secret/data/bad', { data: { v: 1 } });
    const cases: Array<[() => Promise<unknown>, number, string]> = [
      [() => vault.write('secret/data/bad', { data: 'not an object' }), 400, 'secrets.invalid_request'],
      [() => vault.write('secret/data/bad', { data: { v: 2 }, options: { cas: 'x' } }), 400, 'secrets.invalid_request'],
      [() => vault.request({ path: '/secret/data/bad', method: 'PATCH', json: { data: { v: 3 } } }), 400, 'secrets.invalid_request'],
      [() => vault.write('secret/destroy/bad', { versions: [0] }), 400, 'secrets.invalid_request'],
      [() => vault.write('secret/nosuch/bad', { data: {} }), 404, 'secrets.not_found'],
      [() => vault.delete('secret/config'), 405, 'secrets.unsupported_operation'],
      // A list of a leaf is a list of the folder of that name (Vault adds the "/"): empty here.
      [() => vault.read('secret/metadata/bad?list=true'), 404, 'secrets.not_found'],
    ];
    for (const [call, status, code] of cases) {
      const r = await refusal(call());
      expect(r.status).toBe(status);
      expect(Array.isArray((r.body as { errors: unknown }).errors)).toBe(true);
      const row = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
      expect(JSON.parse(row.payload)).toMatchObject({ error_code: code, http: { status } });
    }
    expect((await vault.read('secret/metadata/bad')).data.current_version).toBe(1);
  });

  it('keeps metadata written before any data, and lists it', async () => {
    await vault.write('secret/metadata/later', { custom_metadata: { owner: 'team-a' }, max_versions: 3 });
    expect((await vault.read('secret/metadata/later')).data).toMatchObject({ current_version: 0, max_versions: 3, custom_metadata: { owner: 'team-a' }, versions: {} });
    expect((await refusal(vault.read('secret/data/later'))).status).toBe(404);
    expect((await vault.list('secret/metadata/')).data.keys).toContain('later');
    expect((await vault.write('secret/data/later', { data: { v: 1 } })).data.version).toBe(1);
  });

  it('deletes all versions with the metadata', async () => {
    await vault.write('secret/data/gone', { data: { v: 1 } });
    await vault.delete('secret/metadata/gone');
    expect((await refusal(vault.read('secret/metadata/gone'))).status).toBe(404);
  });
});
