import 'reflect-metadata';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../support/server.js';
import { runCli } from '../support/cli.js';

/** `rampart audit verify` (offline and online) and `rampart audit witness` against a real server. */

const run = runCli;

describe('rampart audit verify / witness', () => {
  let s: TestServer;
  let keyFile: string;
  let online: string[];

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    await s.runtime.stores.audit.insert(Array.from({ length: 40 }, (_, i) => ({ tenant: 'default', recordedAt: s.clock.now().toISOString(), payload: JSON.stringify({ i }) })));
    await s.runtime.audit.integrateAll();
    await s.runtime.checkpointer.checkpoint();
    keyFile = path.join(s.dataDir, 'audit.vkey');
    writeFileSync(keyFile, `${s.runtime.checkpointer.verifierKey}\n`);
    online = ['--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', s.adminToken];
  });
  afterAll(async () => {
    await s?.close();
  });

  it('verifies offline from the store, warning when the key comes from the store itself', async () => {
    const r = await run('audit', 'verify', '--data-dir', s.dataDir, '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, entries_checked: 41, checkpoints_checked: 1, first_bad_index: null });
    expect(r.stderr).toContain('using the verifier key stored in the database');
    const pinned = await run('audit', 'verify', '--data-dir', s.dataDir, '--key', keyFile);
    expect(pinned.code).toBe(0);
    expect(pinned.stdout).toMatch(/^result\s+ok$/m);
    expect(pinned.stderr).toBe('');
  });

  it('verifies online from the tiles with a pinned key, and says so when trusting on first use', async () => {
    const r = await run('audit', 'verify', ...online, '--key', keyFile, '--format', 'json');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, entries_checked: 41, latest: { size: 41 } });
    const tofu = await run('audit', 'verify', ...online);
    expect(tofu.code).toBe(0);
    expect(tofu.stderr).toContain('trust on first use');
  });

  it('witnesses: pins the key, advances, and fails on a rewritten entry without moving its state', async () => {
    const state = path.join(s.dataDir, 'witness.json');
    const first = await run('audit', 'witness', ...online, '--state', state);
    expect(first.code).toBe(0);
    expect(JSON.parse(readFileSync(state, 'utf8'))).toMatchObject({ version: 1, size: 41, verifier_key: s.runtime.checkpointer.verifierKey });

    await s.runtime.database.db.updateTable('audit_events').set({ payload: '{"i":"rewritten"}' }).where('leaf_index', '=', 7).execute();
    const before = readFileSync(state, 'utf8');
    const second = await run('audit', 'witness', ...online, '--state', state, '--format', 'json');
    expect(second.code).toBe(1);
    expect(JSON.parse(second.stdout)).toMatchObject({ ok: false, first_bad_index: 7 });
    expect(readFileSync(state, 'utf8')).toBe(before);
    expect(existsSync(`${state}.tmp`)).toBe(false);

    const offline = await run('audit', 'verify', '--data-dir', s.dataDir, '--key', keyFile, '--format', 'json');
    expect(offline.code).toBe(1);
    const report = JSON.parse(offline.stdout) as { ok: boolean; first_bad_index: number; problems: unknown[] };
    expect(report).toMatchObject({ ok: false, first_bad_index: 7 });
    expect(report.problems[0]).toMatchObject({ kind: 'leaf_hash_mismatch', index: 7 });
  });
});
