import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/audit/checkpoint.js';
import { parseVerifierKey } from '../../src/audit/note.js';
import { ManualClock } from '../../src/core/clock.js';
import { ConfigError, type ServerFlags, resolveServerConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * `audit_origin` (flag / RAMPART_AUDIT_ORIGIN / config file key): it names a new log, and a log
 * keeps its origin for life — starting an existing log under another origin fails with
 * `audit.origin_mismatch` instead of signing checkpoints of a second, forked log.
 */

describe('audit_origin setting', () => {
  it('comes from the flag, the environment or the config file, in that order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-origin-config-'));
    try {
      const file = join(dir, 'rampart.yaml');
      writeFileSync(file, 'audit_origin: file.example/audit\n');
      expect(resolveServerConfig({}, {}).auditOrigin).toBeUndefined();
      expect(resolveServerConfig({ config: file }, {}).auditOrigin).toBe('file.example/audit');
      expect(resolveServerConfig({ config: file }, { RAMPART_AUDIT_ORIGIN: 'env.example/audit' }).auditOrigin).toBe('env.example/audit');
      expect(resolveServerConfig({ config: file, auditOrigin: 'flag.example/audit' }, { RAMPART_AUDIT_ORIGIN: 'env.example/audit' }).auditOrigin).toBe('flag.example/audit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses what cannot be a signed-note key name', () => {
    for (const bad of ['', 'has space', 'a+b', 'tab\there', 'line\nbreak', 'x'.repeat(256), 'nbsp\u00a0here']) {
      expect(() => resolveServerConfig({ auditOrigin: bad }, {}), JSON.stringify(bad)).toThrow(ConfigError);
    }
  });
});

describe.each(TEST_DATABASES)('audit origin across restarts ($name)', (target) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-origin-'));
  let url: string | undefined;
  let drop: () => Promise<void> = async () => undefined;

  const start = (flags: ServerFlags): Promise<Runtime> =>
    startRuntime(resolveServerConfig({ dataDir, databaseUrl: url, logLevel: 'silent', ...flags }, {}), {
      clock: new ManualClock(Date.now()),
      logger: createLogger({ level: 'silent' }),
      integrateEveryMs: 0,
      pruneEveryMs: 0,
    });

  beforeAll(async () => {
    ({ url, drop } = await target.create());
  });
  afterAll(async () => {
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('names a new log with the configured origin, in its key and its checkpoints', async () => {
    const runtime = await start({ auditOrigin: 'rampart.example.com/audit' });
    try {
      expect(runtime.checkpointer.origin).toBe('rampart.example.com/audit');
      expect(runtime.checkpointer.verifierKey).toMatch(/^rampart\.example\.com\/audit\+[0-9a-f]{8}\+/);
      await runtime.audit.integrateAll();
      const cp = await runtime.checkpointer.checkpoint();
      expect(openCheckpoint(cp!.note, parseVerifierKey(runtime.checkpointer.verifierKey)).origin).toBe('rampart.example.com/audit');
    } finally {
      await runtime.close();
    }
  });

  it('starts again with the same origin, or with none configured', async () => {
    for (const flags of [{ auditOrigin: 'rampart.example.com/audit' }, {}]) {
      const runtime = await start(flags);
      expect(runtime.checkpointer.origin).toBe('rampart.example.com/audit');
      await runtime.close();
    }
  });

  it('refuses to start under another origin, leaving the stored key as it was', async () => {
    await expect(start({ auditOrigin: 'other.example.com/audit' })).rejects.toMatchObject({
      code: 'audit.origin_mismatch',
      details: { stored: 'rampart.example.com/audit', configured: 'other.example.com/audit' },
    });
    const runtime = await start({});
    try {
      expect(runtime.checkpointer.origin).toBe('rampart.example.com/audit');
    } finally {
      await runtime.close();
    }
  });
});
