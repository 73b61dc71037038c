import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseListen, redactUrl, resolveServerConfig } from '../../src/core/config.js';
import { parseDuration } from '../../src/core/duration.js';

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-config-'));
  const path = join(dir, 'rampart.yaml');
  writeFileSync(path, text);
  return path;
}

describe('server configuration', () => {
  it('defaults to ./data, 127.0.0.1:8443, SQLite and a 1 MiB body limit', () => {
    const c = resolveServerConfig({}, {}, '/srv');
    expect(c).toEqual({
      dataDir: '/srv/data',
      listen: { host: '127.0.0.1', port: 8443 },
      databaseUrl: undefined,
      bodyLimit: 1048576,
      logLevel: 'info',
      advertiseAddr: 'https://127.0.0.1:8443',
      pkiMaxTtlMs: 86_400_000,
    });
  });

  it('advertises https://<listen> by default and takes --advertise-addr, RAMPART_ADVERTISE_ADDR or advertise_addr', () => {
    expect(resolveServerConfig({ listen: '[::1]:9443' }, {}).advertiseAddr).toBe('https://[::1]:9443');
    const file = configFile('advertise_addr: https://from-file.example\npki_max_ttl: 2h\n');
    expect(resolveServerConfig({ config: file }, {}).advertiseAddr).toBe('https://from-file.example');
    expect(resolveServerConfig({ config: file }, {}).pkiMaxTtlMs).toBe(7_200_000);
    const env = { RAMPART_ADVERTISE_ADDR: 'https://from-env.example:8443/', RAMPART_PKI_MAX_TTL: '30m' };
    expect(resolveServerConfig({ config: file }, env).advertiseAddr).toBe('https://from-env.example:8443');
    expect(resolveServerConfig({ config: file }, env).pkiMaxTtlMs).toBe(1_800_000);
    expect(resolveServerConfig({ config: file, advertiseAddr: 'https://lb.example/rampart' }, env).advertiseAddr).toBe('https://lb.example/rampart');
  });

  it('refuses an advertise address that cannot go into a certificate, and a max TTL under a minute', () => {
    for (const bad of ['rampart.example:8443', 'ftp://h', 'https://h/?q=1', 'https://u:p@h', 'https://h/#f']) {
      expect(() => resolveServerConfig({ advertiseAddr: bad }, {})).toThrow(/advertise address/);
    }
    expect(() => resolveServerConfig({ pkiMaxTtl: '30s' }, {})).toThrow(/max TTL/);
    expect(() => resolveServerConfig({ pkiMaxTtl: 'soon' }, {})).toThrow(/max TTL/);
  });

  it('lets flags win over env and env over the config file', () => {
    const file = configFile('data_dir: /from-file\nlisten: 0.0.0.0:1\nbody_limit: 4096\ndatabase_url: postgres://file/db\n');
    const env = { RAMPART_LISTEN: '127.0.0.1:2', RAMPART_DATA_DIR: '/from-env' };
    const c = resolveServerConfig({ config: file, dataDir: '/from-flag' }, env, '/');
    expect(c.dataDir).toBe('/from-flag');
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 2 });
    expect(c.bodyLimit).toBe(4096);
    expect(c.databaseUrl).toBe('postgres://file/db');
  });

  it('refuses unknown config keys, bad listen addresses, bad limits and non-postgres URLs', () => {
    expect(() => resolveServerConfig({ config: configFile('data-dir: x\n') }, {})).toThrow(ConfigError);
    expect(() => resolveServerConfig({ listen: 'localhost' }, {})).toThrow(/host:port/);
    expect(() => resolveServerConfig({ listen: 'h:70000' }, {})).toThrow(/host:port/);
    expect(() => resolveServerConfig({ bodyLimit: '12' }, {})).toThrow(/body limit/);
    expect(() => resolveServerConfig({ databaseUrl: 'mysql://u:pw@h/db' }, {})).toThrow(ConfigError);
  });

  it('never echoes a database password', () => {
    let message = '';
    try {
      resolveServerConfig({ databaseUrl: 'mysql://user:hunter2@h/db' }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).not.toContain('hunter2');
    expect(redactUrl('postgres://u:hunter2@h:5432/db')).toBe('postgres://u:***@h:5432/db');
  });

  it('parses IPv6 listen addresses', () => {
    expect(parseListen('[::1]:8443')).toEqual({ host: '::1', port: 8443 });
  });
});

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['7d', 604_800_000],
    ['3600', 3_600_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'forever', '1h ', '-5s', '1.5h', 'h1', '10x'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});
