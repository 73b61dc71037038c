import 'reflect-metadata';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { type TestServer, startTestServer } from '../support/server.js';

/** `rampart policy preview DIR --store S [--last N]` against a real server over HTTPS. */
describe('rampart policy preview', () => {
  let s: TestServer;
  let dir: string;
  const conn = () => ['--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', s.adminToken];
  const headers = () => ({ authorization: `Bearer ${s.adminToken}` });
  const ask = (user: string, action: string) =>
    s.app.inject({
      method: 'POST',
      url: '/v1/authz/stores/docs/check',
      headers: headers(),
      payload: { principal: { type: 'User', id: user }, action: { type: 'Action', id: action }, resource: { type: 'Doc', id: 'd' } },
    });

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    dir = mkdtempSync(path.join(tmpdir(), 'rampart-cli-preview-'));
    const pushed = await s.app.inject({
      method: 'PUT',
      url: '/v1/authz/stores/docs/policies',
      headers: headers(),
      payload: { policies: { 'docs.cedar': '@id("read")\npermit (principal, action == Action::"read", resource);' }, message: 'v1' },
    });
    expect(pushed.statusCode).toBe(201);
    for (const user of ['alice', 'bob']) expect((await ask(user, 'read')).json().decision).toBe('allow');
    expect((await ask('carol', 'write')).json().decision).toBe('deny');
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'docs.cedar'), '@id("alice-only")\npermit (principal == User::"alice", action, resource);\n');
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the logged decisions the candidate would flip', async () => {
    const run = await runCli('policy', 'preview', dir, '--store', 'docs', ...conn());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('replayed 3 logged decisions of store docs: 1 would flip');
    expect(run.stdout).toMatch(/User::"bob"\s+Action::"read"\s+Doc::"d"\s+allow \(v1\) -> deny/);
    expect(run.stdout).not.toContain('alice');
    expect(run.stdout).not.toContain('carol');

    const json = await runCli('policy', 'preview', dir, '--store', 'docs', '--last', '1', '--format', 'json', ...conn());
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ replayed: 1, flipped: 0, flips: [], failed: [] });
  });

  it('exits 2 with the code when the candidate does not parse, 1 for a directory without policies', async () => {
    const bad = mkdtempSync(path.join(tmpdir(), 'rampart-cli-preview-bad-'));
    try {
      writeFileSync(path.join(bad, 'x.cedar'), 'permit (principal,');
      const run = await runCli('policy', 'preview', bad, '--store', 'docs', ...conn());
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('(authz.candidate_invalid)');
      rmSync(path.join(bad, 'x.cedar'));
      expect((await runCli('policy', 'preview', bad, '--store', 'docs', ...conn())).code).toBe(1);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
