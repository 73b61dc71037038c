import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { runTool } from '../support/processes.js';
import { type TestServer, startTestServer } from '../support/server.js';

/** `rampart ca …` against a real server over HTTPS: status, rotate/activate, the root key offline and back. */

describe('rampart ca', () => {
  let s: TestServer;
  let dir: string;
  const conn = () => ['--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', s.adminToken];
  const f = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    dir = mkdtempSync(path.join(tmpdir(), 'rampart-cli-ca-'));
    writeFileSync(f('pass'), 'correct horse battery staple\n');
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rotates the intermediate: prepared by rotate, active after activate', async () => {
    const status = await runCli('ca', 'status', ...conn());
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/intermediate\s+active/);
    const rotated = await runCli('ca', 'rotate', '--intermediate', '--propagation-delay', '1h', '--format', 'json', ...conn());
    expect(rotated.code, rotated.stderr).toBe(0);
    const prepared = (JSON.parse(rotated.stdout) as { authorities: { status: string }[] }).authorities.filter((a) => a.status === 'prepared');
    expect(prepared).toHaveLength(1);
    const twice = await runCli('ca', 'rotate', ...conn());
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('(pki.rotation_in_progress)');
    const activated = await runCli('ca', 'activate', ...conn());
    expect(activated.code, activated.stderr).toBe(0);
    expect(activated.stdout).toMatch(/intermediate\s+previous/);
  });

  it('exports the root key to a 0600 file openssl decrypts, removes it, and imports it back', async () => {
    const exported = await runCli('ca', 'root', 'export', '--out', f('root.p8.enc'), '--cert-out', f('root.pem'), '--passphrase-file', f('pass'), '--format', 'json', ...conn());
    expect(exported.code, exported.stderr).toBe(0);
    const { root_id: rootId } = JSON.parse(exported.stdout) as { root_id: string };
    expect(statSync(f('root.p8.enc')).mode & 0o777).toBe(0o600);
    expect((await runTool('openssl', ['pkey', '-in', f('root.p8.enc'), '-passin', `file:${f('pass')}`, '-noout'])).status).toBe(0);
    // The key belongs to the exported root certificate.
    const keyPub = await runTool('openssl', ['pkey', '-in', f('root.p8.enc'), '-passin', `file:${f('pass')}`, '-pubout']);
    const certPub = await runTool('openssl', ['x509', '-in', f('root.pem'), '-noout', '-pubkey']);
    expect(keyPub.stdout).toBe(certPub.stdout);
    // Never overwrites an earlier export.
    expect((await runCli('ca', 'root', 'export', '--out', f('root.p8.enc'), '--passphrase-file', f('pass'), ...conn())).code).not.toBe(0);

    expect((await runCli('ca', 'root', 'remove', '--root-id', rootId, ...conn())).code).toBe(0);
    const offline = await runCli('ca', 'rotate', ...conn());
    expect(offline.stderr).toContain('(pki.root_offline)');
    const imported = await runCli('ca', 'root', 'import', '--in', f('root.p8.enc'), '--passphrase-file', f('pass'), ...conn());
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/key_online\s+true/);
    expect(readFileSync(f('root.p8.enc'), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  });
});
