import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { type TestServer, startTestServer } from '../support/server.js';

/** `rampart audit hold|release|hold-status|erase` against a real server, run in-process. */
describe('rampart audit administration', () => {
  let s: TestServer;
  const conn = () => ['--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', s.adminToken, '--format', 'json'];

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('places, shows and releases a legal hold', async () => {
    const held = await runCli('audit', 'hold', '--reason', 'litigation 42', ...conn());
    expect(held.code, held.stderr).toBe(0);
    expect(JSON.parse(held.stdout)).toMatchObject({ enabled: true, reason: 'litigation 42' });
    const status = await runCli('audit', 'hold-status', ...conn());
    expect(JSON.parse(status.stdout)).toMatchObject({ enabled: true, reason: 'litigation 42' });
    const released = await runCli('audit', 'release', ...conn());
    expect(released.code, released.stderr).toBe(0);
    expect(JSON.parse((await runCli('audit', 'hold-status', ...conn())).stdout)).toMatchObject({ enabled: false });
  });

  it('erases a data subject and reports how many keys were destroyed', async () => {
    await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { policies: [], display_name: 'carol@example.com' } });
    const erased = await runCli('audit', 'erase', '--subject', 'carol@example.com', ...conn());
    expect(erased.code, erased.stderr).toBe(0);
    expect(JSON.parse(erased.stdout)).toEqual({ subject_ref: s.runtime.subjects.refOf('carol@example.com'), keys_destroyed: 1 });
    const missing = await runCli('audit', 'erase', ...conn());
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--subject');
  });

  it('refuses a principal without permission with exit code 2 and the problem code', async () => {
    const created = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { policies: [] } });
    const token = (created.json() as { token: string }).token;
    const denied = await runCli('audit', 'hold', '--reason', 'x', '--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', token);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toContain('authz.denied');
  });
});
