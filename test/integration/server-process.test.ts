import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { startServerProcess } from '../support/processes.js';

const run = promisify(execFile);
const ENTRY = new URL('../support/cli-entry.ts', import.meta.url).pathname;

function get(addr: string, path: string, ca: string, token?: string): Promise<{ status: number; requestId: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${addr}${path}`, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-request-id'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `rampart <args>` as a user runs it, against the server process. */
async function cli(args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', ENTRY, ...args], { env: { ...process.env, ...env } });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

/**
 * The server as an operator runs it: its own process, first start and restart on one data
 * directory, the CLI against it, and SIGTERM while requests are in flight.
 */
describe('rampart server process', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-process-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  let firstToken = '';
  let firstCa = '';
  let firstCert = '';

  it('initializes a fresh data directory on first start', async () => {
    const server = await startServerProcess(['--data-dir', dataDir]);
    try {
      for (const file of ['ca.pem', 'admin-token', 'unseal.key', 'rampart.db', 'tls/server.pem', 'tls/server-key.pem']) {
        expect(statSync(join(dataDir, file)).isFile(), file).toBe(true);
      }
      for (const secret of ['admin-token', 'unseal.key', 'tls/server-key.pem']) {
        expect(statSync(join(dataDir, secret)).mode & 0o777, secret).toBe(0o600);
      }
      firstToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      firstCa = readFileSync(join(dataDir, 'ca.pem'), 'utf8');
      firstCert = readFileSync(join(dataDir, 'tls/server.pem'), 'utf8');
      expect(firstToken).toMatch(/^rpt\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
      expect(server.output()).toContain(join(dataDir, 'admin-token'));
      expect(server.output()).not.toContain(firstToken);

      const health = await get(server.addr, '/v1/health', firstCa);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toEqual({ status: 'ok', version: expect.any(String), store: 'sqlite' });

      // The CLI, configured like VAULT_ADDR/VAULT_TOKEN/VAULT_CACERT.
      const env = { RAMPART_ADDR: server.addr, RAMPART_TOKEN: firstToken, RAMPART_CACERT: join(dataDir, 'ca.pem') };
      const tenant = await cli(['tenant', 'create', 'acme', '--format', 'json'], env);
      expect(tenant.code, tenant.stderr).toBe(0);
      expect(JSON.parse(tenant.stdout)).toMatchObject({ name: 'acme', trust_domain: 'acme.rampart.local' });
      const created = await cli(['token', 'create', '--ttl', '1h', '--policy', 'admin', '--tenant', 'acme', '--format', 'json'], env);
      expect(created.code, created.stderr).toBe(0);
      const acmeToken = JSON.parse(created.stdout) as { token: string; accessor: string; tenant: string };
      expect(acmeToken.tenant).toBe('acme');
      const lookup = await cli(['token', 'lookup', '--format', 'json'], { ...env, RAMPART_TOKEN: acmeToken.token });
      expect(JSON.parse(lookup.stdout)).toMatchObject({ accessor: acmeToken.accessor, tenant: 'acme', policies: ['admin'] });
      const revoke = await cli(['token', 'revoke', acmeToken.accessor, '--tenant', 'acme'], env);
      expect(revoke.code, revoke.stderr).toBe(0);
      const refused = await cli(['token', 'lookup'], { ...env, RAMPART_TOKEN: acmeToken.token });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('auth.token_revoked');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 120_000);

  it('reuses the CA, the server certificate and the admin token on restart', async () => {
    const server = await startServerProcess(['--data-dir', dataDir]);
    try {
      expect(readFileSync(join(dataDir, 'ca.pem'), 'utf8')).toBe(firstCa);
      expect(readFileSync(join(dataDir, 'tls/server.pem'), 'utf8')).toBe(firstCert);
      expect(readFileSync(join(dataDir, 'admin-token'), 'utf8').trim()).toBe(firstToken);
      const self = await get(server.addr, '/v1/tokens/self', firstCa, firstToken);
      expect(self.status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 120_000);

  it('drains on SIGTERM: every acknowledged request has its audit event after shutdown', async () => {
    const server = await startServerProcess(['--data-dir', dataDir]);
    const answered: { status: number; requestId: string; body: string }[] = [];
    const inFlight = Array.from({ length: 60 }, () =>
      get(server.addr, '/v1/tokens/self', firstCa, firstToken).then(
        (r) => answered.push(r),
        () => undefined, // refused after shutdown began: never acknowledged
      ),
    );
    while (answered.length < 5) await new Promise((r) => setImmediate(r));
    const code = await server.stop();
    await Promise.all(inFlight);
    expect(code).toBe(0);
    const ok = answered.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(5);
    // Whatever arrived while draining was refused as a problem, never answered half-way.
    for (const r of answered.filter((a) => a.status !== 200)) {
      expect({ status: r.status, code: (JSON.parse(r.body) as { code?: string }).code }).toEqual({ status: 503, code: 'server.shutting_down' });
    }

    const db = new Database(join(dataDir, 'rampart.db'), { readonly: true });
    try {
      const ids = new Set(
        db
          .prepare('select payload from audit_events')
          .all()
          .map((r) => (JSON.parse((r as { payload: string }).payload) as { request_id: string }).request_id),
      );
      for (const r of ok) expect(ids.has(r.requestId), r.requestId).toBe(true);
      // Shutdown integrates what was queued: no event is left without its leaf.
      const pending = db.prepare('select count(*) as n from audit_events where leaf_index is null').get() as { n: number };
      expect(pending.n).toBe(0);
    } finally {
      db.close();
    }
  }, 120_000);
});
