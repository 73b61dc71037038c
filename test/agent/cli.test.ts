import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../support/cli.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * `rampart workload register|list|show|delete`, `rampart agent token create` in-process, and
 * `rampart agent run` as its own process (real timers), against a listening server.
 */
const ENTRY = fileURLToPath(new URL('../support/cli-entry.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TD = 'spiffe://default.rampart.local';

describe('rampart workload and rampart agent', () => {
  let s: TestServer;
  let dir: string;
  const conn = () => ['--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', s.adminToken];

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-cli-agent-'));
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers, lists, shows and deletes entries; refusals exit 2 with the code', async () => {
    const reg = await runCli('workload', 'register', `${TD}/ns/pay/sa/api`, '--selector', 'k8s:sa:pay/api', '--selector', 'unix:uid:1000', '--parent', 'k8s:cluster:prod', '--ttl', '10m', '--dns', 'api.pay.svc', '--format', 'json', ...conn());
    expect(reg.code, reg.stderr).toBe(0);
    const entry = JSON.parse(reg.stdout) as { id: string; selectors: string[] };
    expect(entry.selectors).toEqual(['k8s:sa:pay/api', 'unix:uid:1000']);
    const list = await runCli('workload', 'list', ...conn());
    expect(list.stdout).toContain(entry.id);
    expect(list.stdout).toContain('k8s:cluster:prod');
    const show = await runCli('workload', 'show', entry.id, ...conn());
    expect(show.stdout).toMatch(/ttl\s+600s/);
    const bad = await runCli('workload', 'register', `${TD}/x`, '--selector', 'nocolon', '--parent', 'k8s:cluster:prod', ...conn());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('pki.selector_invalid');
    expect((await runCli('workload', 'delete', entry.id, ...conn())).code).toBe(0);
    const gone = await runCli('workload', 'show', entry.id, ...conn());
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('pki.registration_not_found');
  });

  it('creates a join token, and `agent run` attests with it and writes the SVID of its entry', async () => {
    const created = await runCli('agent', 'token', 'create', '--ttl', '10m', '--format', 'json', ...conn());
    expect(created.code, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout) as { token: string; spiffe_id: string };
    const reg = JSON.parse((await runCli('workload', 'register', `${TD}/ns/web`, '--selector', 'unix:uid:33', '--parent', token.spiffe_id, '--format', 'json', ...conn())).stdout) as { id: string };
    writeFileSync(join(dir, 'ca.pem'), s.runtime.trustBundlePem);

    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'agent', 'run', '--server', s.addr!, '--ca', join(dir, 'ca.pem'), '--join-token', token.token, '--dir', join(dir, 'out'), '--log-level', 'warn'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await vi.waitFor(() => expect(existsSync(join(dir, 'out', reg.id, 'svid.pem')), output).toBe(true), { timeout: 60_000, interval: 200 });
      expect(statSync(join(dir, 'out', reg.id, 'key.pem')).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(dir, 'out', 'agent', 'svid.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);
});
