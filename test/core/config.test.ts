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
      auditRetentionMs: undefined,
      auditSinks: [],
      k8sAttestors: [],
      authzDecisionLogAllowSample: 1,
    });
  });

  it('keeps audit payloads forever by default and takes --audit-retention, RAMPART_AUDIT_RETENTION or audit_retention', () => {
    expect(resolveServerConfig({}, {}).auditRetentionMs).toBeUndefined();
    expect(resolveServerConfig({ auditRetention: 'none' }, {}).auditRetentionMs).toBeUndefined();
    const file = configFile('audit_retention: 2160h\n');
    expect(resolveServerConfig({ config: file }, {}).auditRetentionMs).toBe(2160 * 3_600_000);
    const env = { RAMPART_AUDIT_RETENTION: '30d' };
    expect(resolveServerConfig({ config: file }, env).auditRetentionMs).toBe(30 * 86_400_000);
    expect(resolveServerConfig({ config: file, auditRetention: '1h' }, env).auditRetentionMs).toBe(3_600_000);
  });

  it('refuses an audit retention that is not a duration of at least an hour (a bare number would be seconds)', () => {
    for (const bad of ['59m', '2160', 'forever', '0h', '']) {
      expect(() => resolveServerConfig({ auditRetention: bad }, {})).toThrow(ConfigError);
    }
    expect(() => resolveServerConfig({ config: configFile('audit_retention: 2160\n') }, {})).toThrow(/audit retention/);
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

describe('audit sinks configuration', () => {
  const sinksFrom = (yaml: string, env: Record<string, string | undefined> = {}) => resolveServerConfig({ config: configFile(yaml) }, env).auditSinks;
  const refusal = (yaml: string, env: Record<string, string | undefined> = {}): string => {
    try {
      sinksFrom(yaml, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('reads jsonl, syslog and webhook sinks with their defaults; relative paths are relative to the config file', () => {
    const path = configFile(
      [
        'audit_sinks:',
        '  - { name: file, type: jsonl, path: audit/audit.jsonl }',
        '  - { name: file-big, type: jsonl, path: /var/log/rampart.jsonl, max_bytes: 1048576, keep: 3 }',
        '  - { name: siem, type: syslog, address: "siem.example:6514", ca_file: siem-ca.pem }',
        '  - { name: siem6, type: syslog, address: "[2001:db8::1]:6514", facility: local4 }',
        '  - { name: hook, type: webhook, url: "https://hooks.example/rampart", secret_env: HOOK_SECRET }',
        '  - { name: hook-open, type: webhook, url: "https://hooks.example/x", ca_file: /etc/ca.pem }',
      ].join('\n'),
    );
    const dir = path.slice(0, path.lastIndexOf('/'));
    const sinks = resolveServerConfig({ config: path }, { HOOK_SECRET: 's3cret' }).auditSinks;
    expect(sinks).toEqual([
      { type: 'jsonl', name: 'file', path: `${dir}/audit/audit.jsonl`, maxBytes: 100 * 1024 * 1024, keep: 10 },
      { type: 'jsonl', name: 'file-big', path: '/var/log/rampart.jsonl', maxBytes: 1048576, keep: 3 },
      { type: 'syslog', name: 'siem', host: 'siem.example', port: 6514, caFile: `${dir}/siem-ca.pem`, facility: 'authpriv' },
      { type: 'syslog', name: 'siem6', host: '2001:db8::1', port: 6514, caFile: undefined, facility: 'local4' },
      { type: 'webhook', name: 'hook', url: 'https://hooks.example/rampart', caFile: undefined, secret: 's3cret' },
      { type: 'webhook', name: 'hook-open', url: 'https://hooks.example/x', caFile: '/etc/ca.pem', secret: undefined },
    ]);
    expect(sinksFrom('audit_sinks: []\n')).toEqual([]);
    expect(sinksFrom('log_level: debug\n')).toEqual([]);
  });

  it('refuses malformed sink lists and says what is wrong', () => {
    expect(refusal('audit_sinks: nope\n')).toMatch(/audit_sinks must be a list/);
    expect(refusal('audit_sinks: [42]\n')).toMatch(/audit_sinks\[0\] must be a mapping/);
    expect(refusal('audit_sinks: [{ type: jsonl, path: a }]\n')).toMatch(/audit_sinks\[0\]: name must be/);
    expect(refusal('audit_sinks: [{ name: "Bad Name", type: jsonl, path: a }]\n')).toMatch(/name must be/);
    expect(refusal('audit_sinks: [{ name: a, type: jsonl, path: x }, { name: a, type: jsonl, path: y }]\n')).toMatch(/audit_sinks\[1\]: a sink named "a" is already configured/);
    expect(refusal('audit_sinks: [{ name: a, type: kafka }]\n')).toMatch(/audit sink "a": type must be one of jsonl, syslog, webhook \(got "kafka"\)/);
    expect(refusal('audit_sinks: [{ name: a, type: jsonl }]\n')).toMatch(/audit sink "a": path is required for type jsonl/);
    expect(refusal('audit_sinks: [{ name: a, type: jsonl, path: x, url: "https://h" }]\n')).toMatch(/key "url" does not apply to type jsonl/);
    expect(refusal('audit_sinks: [{ name: a, type: syslog, address: h:6514, ca-file: x }]\n')).toMatch(/key "ca-file" does not apply to type syslog/);
    expect(refusal('audit_sinks: [{ name: a, type: jsonl, path: x, max_bytes: 10 }]\n')).toMatch(/max_bytes must be an integer between 4096/);
    expect(refusal('audit_sinks: [{ name: a, type: jsonl, path: x, keep: 0 }]\n')).toMatch(/keep must be an integer between 1 and 1000/);
    expect(refusal('audit_sinks: [{ name: a, type: jsonl, path: x, keep: "3" }]\n')).toMatch(/keep must be an integer/);
    expect(refusal('audit_sinks: [{ name: a, type: jsonl, path: 7 }]\n')).toMatch(/path must be a non-empty string/);
    expect(refusal('audit_sinks: [{ name: a, type: syslog, address: siem.example }]\n')).toMatch(/address must be host:port .* \(got "siem.example"\)/);
    expect(refusal('audit_sinks: [{ name: a, type: syslog, address: "h:1", facility: kern }]\n')).toMatch(/facility must be one of auth, authpriv, local0/);
    expect(refusal('audit_sinks: [{ name: a, type: webhook, url: "http://h/x" }]\n')).toMatch(/url must be an https:\/\/ URL/);
    expect(refusal('audit_sinks: [{ name: a, type: webhook, url: "not a url" }]\n')).toMatch(/url must be an https:\/\/ URL/);
  });

  it('takes the webhook secret only from the named environment variable, and never echoes a URL password', () => {
    expect(refusal('audit_sinks: [{ name: a, type: webhook, url: "https://h/x", secret_env: HOOK_SECRET }]\n')).toMatch(/environment variable HOOK_SECRET \(secret_env\) is not set/);
    expect(refusal('audit_sinks: [{ name: a, type: webhook, url: "https://h/x", secret_env: HOOK_SECRET }]\n', { HOOK_SECRET: '' })).toMatch(/is not set/);
    expect(refusal('audit_sinks: [{ name: a, type: webhook, url: "https://h/x", secret_env: "not-a-var" }]\n')).toMatch(/secret_env must name an environment variable/);
    expect(refusal('audit_sinks: [{ name: a, type: webhook, url: "https://h/x", secret: inline }]\n')).toMatch(/key "secret" does not apply/);
    const message = refusal('audit_sinks: [{ name: a, type: webhook, url: "https://u:hunter2@h/x" }]\n');
    expect(message).not.toContain('hunter2');
  });
});
