import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../support/server.js';
import { until } from '../support/until.js';

const ENTRY = new URL('../support/cli-entry.ts', import.meta.url).pathname;

/** `rampart audit events` / `audit tail -f` as a user runs them, against a listening server. */
describe('rampart audit tail', () => {
  let s: TestServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    env = { RAMPART_ADDR: s.addr!, RAMPART_TOKEN: s.adminToken, RAMPART_CACERT: s.runtime.files.trustBundle };
  });
  afterAll(async () => {
    await s?.close();
  });

  function rampart(args: string[]) {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    return { child, exited, out: () => out, err: () => err };
  }

  /** Requests the server has answered on the events route: each is one poll of `tail -f`. */
  async function polls(): Promise<number> {
    const { values } = await s.runtime.metrics.requests.get();
    return values.filter((v) => v.labels.route === '/v1/audit/events').reduce((n, v) => n + v.value, 0);
  }

  it('prints filtered events as JSON lines', async () => {
    await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { policies: [], display_name: 'filtered' } });
    const run = rampart(['audit', 'events', '--action', 'token:create', '--since', new Date(0).toISOString()]);
    expect(await run.exited, run.err()).toBe(0);
    const lines = run.out().trim().split('\n').map((l) => JSON.parse(l) as { event: { action: string; details: { created_accessor: string } } });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.event.action).toBe('token:create');
  }, 60_000);

  it('follows new events until interrupted, printing each once', async () => {
    const before = await polls();
    const run = rampart(['audit', 'tail', '-f', '--interval', '200ms', '--action', 'tenant:create']);
    await until(async () => (await polls()) >= before + 2, 'two polls before any match', 30_000);
    for (const name of ['one', 'two']) {
      await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { name } });
    }
    await until(() => run.out().trim().split('\n').filter(Boolean).length >= 2, `two events printed; stderr: ${run.err()}`, 30_000);
    const printed = await polls();
    await until(async () => (await polls()) >= printed + 3, 'three more polls after both were printed: none may print them again', 30_000);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    const created = run
      .out()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { event: { details: { created_tenant: string } } }).event.details.created_tenant);
    expect(created).toEqual(['one', 'two']);
  }, 60_000);
});
