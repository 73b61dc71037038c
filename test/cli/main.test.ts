import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTestPki, type FakeServer, startFakeServer, type TestPki } from '../sdk/fake-server.js';
import { runCli } from '../support/cli.js';

let pki: TestPki;
let server: FakeServer;
let dir: string;
let caFile: string;
let wrongCaFile: string;
let emptyDataDir: string;
/** An address where nothing listens, to prove a setting was overridden. */
let deadAddr: string;


const run = runCli;

/** Connection flags for the fake server, for tests not about precedence. */
function conn(): string[] {
  return ['--addr', server.url, '--ca-file', caFile, '--token', server.validToken];
}

beforeAll(async () => {
  pki = await createTestPki();
  server = await startFakeServer(pki);
  dir = mkdtempSync(path.join(tmpdir(), 'rampart-cli-'));
  caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, pki.caPem);
  wrongCaFile = path.join(dir, 'other-ca.pem');
  writeFileSync(wrongCaFile, pki.otherCaPem);
  emptyDataDir = mkdtempSync(path.join(tmpdir(), 'rampart-cli-empty-'));

  const probe = https.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  deadAddr = `https://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

beforeEach(() => {
  for (const name of ['RAMPART_ADDR', 'RAMPART_TOKEN', 'RAMPART_CACERT', 'RAMPART_TENANT']) vi.stubEnv(name, undefined);
  // Keep a developer's ./data/ca.pem out of the tests: the probe looks here instead.
  vi.stubEnv('RAMPART_DATA_DIR', emptyDataDir);
});

afterEach(() => {
  vi.unstubAllEnvs();
  server.override = undefined;
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(emptyDataDir, { recursive: true, force: true });
});

describe('rampart (program)', () => {
  it('prints the package version', async () => {
    const r = await run('--version');
    expect(r).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '' });
  });

  it('exits 1 with a usage error for an unknown command', async () => {
    const r = await run('frobnicate');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it('documents the server flags without loading the server module', async () => {
    const r = await run('server', '--help');
    expect(r.code).toBe(0);
    for (const flag of ['--config', '--data-dir', '--listen', '--database-url', '--body-limit']) {
      expect(r.stdout).toContain(flag);
    }
  });

  it('shows the client options on every client command', async () => {
    const r = await run('token', 'create', '--help');
    expect(r.code).toBe(0);
    for (const flag of ['--addr', '--token', '--token-file', '--ca-file', '--tenant', '--format', '--policy']) {
      expect(r.stdout).toContain(flag);
    }
  });
});

describe('rampart health', () => {
  it('prints status, version and store as text', async () => {
    const r = await run('health', '--addr', server.url, '--ca-file', caFile);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^status\s+ok$/m);
    expect(r.stdout).toMatch(/^version\s+0\.1\.0$/m);
    expect(r.stdout).toMatch(/^store\s+sqlite$/m);
    expect(server.last()).toMatchObject({ method: 'GET', path: '/v1/health' });
  });

  it('prints the raw response with --format json', async () => {
    const r = await run('health', '--addr', server.url, '--ca-file', caFile, '--format', 'json');
    expect(JSON.parse(r.stdout)).toEqual({ status: 'ok', version: '0.1.0', store: 'sqlite' });
  });

  it('rejects an unknown --format', async () => {
    const r = await run('health', '--format', 'yaml');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('yaml');
  });
});

describe('connection settings: flag > env > default', () => {
  it('uses RAMPART_ADDR when no --addr is given', async () => {
    vi.stubEnv('RAMPART_ADDR', server.url);
    const before = server.requests.length;
    const r = await run('health', '--ca-file', caFile);
    expect(r.code).toBe(0);
    expect(server.requests.length).toBe(before + 1);
  });

  it('--addr beats RAMPART_ADDR', async () => {
    vi.stubEnv('RAMPART_ADDR', deadAddr);
    expect((await run('health', '--ca-file', caFile)).code).toBe(1);
    expect((await run('health', '--ca-file', caFile, '--addr', server.url)).code).toBe(0);
  });

  it('says where to look when nothing listens at the address', async () => {
    const r = await run('health', '--addr', deadAddr, '--ca-file', caFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`is the server running at ${deadAddr}?`);
    expect(r.stdout).toBe('');
  });

  it('uses RAMPART_TOKEN, and --token beats it', async () => {
    vi.stubEnv('RAMPART_TOKEN', server.validToken);
    const ok = await run('token', 'lookup', '--addr', server.url, '--ca-file', caFile);
    expect(ok.code).toBe(0);
    expect(server.last().headers.authorization).toBe(`Bearer ${server.validToken}`);

    const bad = await run('token', 'lookup', '--addr', server.url, '--ca-file', caFile, '--token', 'rmp_flag_token');
    expect(server.last().headers.authorization).toBe('Bearer rmp_flag_token');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('(auth.token_invalid)');
    expect(bad.stderr).not.toContain('rmp_flag_token');
  });

  it('reads --token-file (trimmed), which beats RAMPART_TOKEN', async () => {
    vi.stubEnv('RAMPART_TOKEN', 'rmp_env_token');
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${server.validToken}\n`);
    const r = await run('token', 'lookup', '--addr', server.url, '--ca-file', caFile, '--token-file', tokenFile);
    expect(r.code).toBe(0);
    expect(server.last().headers.authorization).toBe(`Bearer ${server.validToken}`);
  });

  it('refuses --token together with --token-file', async () => {
    const r = await run('health', '--token', 'a', '--token-file', 'b');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot be used with/);
  });

  it('sends RAMPART_TENANT as X-Rampart-Tenant, and --tenant beats it', async () => {
    vi.stubEnv('RAMPART_TENANT', 'from-env');
    await run('token', 'lookup', ...conn());
    expect(server.last().headers['x-rampart-tenant']).toBe('from-env');
    await run('token', 'lookup', ...conn(), '--tenant', 'from-flag');
    expect(server.last().headers['x-rampart-tenant']).toBe('from-flag');
  });

  it('uses RAMPART_CACERT, and --ca-file beats it', async () => {
    vi.stubEnv('RAMPART_CACERT', caFile);
    expect((await run('health', '--addr', server.url)).code).toBe(0);

    vi.stubEnv('RAMPART_CACERT', wrongCaFile);
    const refused = await run('health', '--addr', server.url);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--ca-file');
    expect((await run('health', '--addr', server.url, '--ca-file', caFile)).code).toBe(0);
  });

  it('falls back to $RAMPART_DATA_DIR/ca.pem when no CA is given', async () => {
    vi.stubEnv('RAMPART_DATA_DIR', dir);
    expect((await run('health', '--addr', server.url)).code).toBe(0);
  });

  it('without any CA the server is not trusted and the error names the flag', async () => {
    const r = await run('health', '--addr', server.url);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error: TLS certificate of .* --ca-file or RAMPART_CACERT/);
  });

  it('reports an unreadable --ca-file', async () => {
    const r = await run('health', '--addr', server.url, '--ca-file', path.join(dir, 'missing.pem'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Cannot read CA bundle');
  });
});

describe('rampart tenant', () => {
  it('create sends the name and prints the tenant', async () => {
    const r = await run('tenant', 'create', 'acme', ...conn());
    expect(r.code).toBe(0);
    expect(server.last()).toMatchObject({ method: 'POST', path: '/v1/tenants', body: { name: 'acme' } });
    expect(r.stdout).toMatch(/^name\s+acme$/m);
  });

  it('create of an existing tenant prints the problem and exits 2', async () => {
    await run('tenant', 'create', 'twice', ...conn());
    const r = await run('tenant', 'create', 'twice', ...conn());
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'Error: A tenant with that name already exists (tenant.exists): tenant "twice" exists\nRequest ID: req-123\n',
    );
  });

  it('list prints a table and hints at the next page on stderr', async () => {
    const r = await run('tenant', 'list', ...conn(), '--limit', '1');
    expect(r.code).toBe(0);
    expect(server.last().query).toEqual({ limit: '1' });
    expect(r.stdout).toMatch(/^NAME\s+CREATED_AT$/m);
    expect(r.stdout).toMatch(/^default\s+2026-01-01T00:00:00.000Z$/m);
    expect(r.stderr).toBe('More results: rampart tenant list --cursor 1\n');
  });

  it('list --format json prints the raw page', async () => {
    const r = await run('tenant', 'list', ...conn(), '--format', 'json', '--cursor', '0', '--limit', '1');
    expect(JSON.parse(r.stdout)).toEqual({
      items: [{ name: 'default', created_at: '2026-01-01T00:00:00.000Z' }],
      next_cursor: '1',
    });
  });

  it('list rejects a non-positive --limit as a usage error', async () => {
    const r = await run('tenant', 'list', ...conn(), '--limit', '0');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('expected a positive integer');
  });
});

describe('rampart token', () => {
  it('create sends ttl, repeated policies and display name, and prints the secret once', async () => {
    const r = await run(
      'token',
      'create',
      ...conn(),
      '--ttl',
      '1h',
      '--policy',
      'admin',
      '--policy',
      'audit-reader',
      '--display-name',
      'ci',
    );
    expect(r.code).toBe(0);
    expect(server.last()).toMatchObject({ method: 'POST', path: '/v1/tokens' });
    expect(server.last().body).toEqual({ ttl: '1h', policies: ['admin', 'audit-reader'], display_name: 'ci' });
    expect(r.stdout).toMatch(/^Key\s+Value$/m);
    expect(r.stdout).toMatch(/^token\s+rmp_secret_\d+$/m);
    expect(r.stdout).toMatch(/^token_accessor\s+acc_\d+$/m);
    expect(r.stdout).toMatch(/^token_policies\s+\["admin","audit-reader"\]$/m);
    expect(r.stdout).toMatch(/^expires_at\s+2026-01-01T01:00:00.000Z$/m);
  });

  it('create without policies sends an empty list; --format json prints the raw response', async () => {
    const r = await run('token', 'create', ...conn(), '--format', 'json');
    expect(server.last().body).toEqual({ policies: [] });
    expect(JSON.parse(r.stdout)).toMatchObject({ token: expect.stringMatching(/^rmp_secret_/), policies: [] });
  });

  it('lookup without an accessor reads the own token and never prints a secret', async () => {
    const r = await run('token', 'lookup', ...conn());
    expect(r.code).toBe(0);
    expect(server.last()).toMatchObject({ method: 'GET', path: '/v1/tokens/self' });
    expect(r.stdout).toMatch(/^accessor\s+acc_root$/m);
    expect(r.stdout).toMatch(/^expires_at\s+never$/m);
    expect(r.stdout).not.toContain(server.validToken);
  });

  it('lookup of an unknown accessor exits 2 with the problem code', async () => {
    const r = await run('token', 'lookup', 'acc_nope', ...conn());
    expect(server.last().path).toBe('/v1/tokens/acc_nope');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Error: No such token (token.not_found): no token acc_nope');
  });

  it('revoke sends DELETE by accessor', async () => {
    const created = JSON.parse((await run('token', 'create', ...conn(), '--format', 'json')).stdout) as {
      accessor: string;
    };
    const r = await run('token', 'revoke', created.accessor, ...conn());
    expect(r.code).toBe(0);
    expect(server.last()).toMatchObject({ method: 'DELETE', path: `/v1/tokens/${created.accessor}` });
    expect(r.stdout).toBe(`Success! Revoked token with accessor ${created.accessor}\n`);
  });
});

describe('rampart audit events', () => {
  it('prints one JSON object per line', async () => {
    const r = await run('audit', 'events', ...conn());
    expect(r.code).toBe(0);
    expect(server.last()).toMatchObject({ method: 'GET', path: '/v1/audit/events', query: {} });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { seq: 1, action: 'tenant.create', tenant: 'default' },
      { seq: 2, action: 'token.create', tenant: 'default' },
    ]);
    expect(r.stderr).toBe('');
  });

  it('passes --limit and hints at the next page on stderr', async () => {
    const r = await run('audit', 'events', ...conn(), '--limit', '2');
    expect(server.last().query).toEqual({ limit: '2' });
    expect(r.stderr).toBe('More results: rampart audit events --cursor 2\n');
  });
});
