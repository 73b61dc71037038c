import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event.js';
import { createConfiguredSinks } from '../../../src/audit/sinks/configured.js';
import { JsonlFileSink } from '../../../src/audit/sinks/jsonl-file.js';
import { SyslogSink } from '../../../src/audit/sinks/syslog.js';
import { WebhookSink } from '../../../src/audit/sinks/webhook.js';
import { ManualClock } from '../../../src/core/clock.js';
import { resolveServerConfig } from '../../../src/core/config.js';
import { createLogger } from '../../../src/core/logger.js';
import { type Runtime, startRuntime } from '../../../src/runtime.js';
import { testEvent } from '../../support/audit-event.js';

describe('configured audit sinks', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-sinks-config-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds one sink per entry and reads CA files up front', () => {
    writeFileSync(join(dir, 'ca.pem'), 'not checked here');
    const sinks = createConfiguredSinks([
      { type: 'jsonl', name: 'f', path: join(dir, 'a.jsonl'), maxBytes: 4096, keep: 2 },
      { type: 'syslog', name: 's', host: '127.0.0.1', port: 6514, caFile: join(dir, 'ca.pem'), facility: 'local0' },
      { type: 'webhook', name: 'w', url: 'https://h.example/x', caFile: undefined, secret: 'k' },
    ]);
    expect(sinks.map((s) => [s.name, s.constructor])).toEqual([
      ['f', JsonlFileSink],
      ['s', SyslogSink],
      ['w', WebhookSink],
    ]);
    expect(() => createConfiguredSinks([{ type: 'webhook', name: 'w', url: 'https://h/x', caFile: join(dir, 'missing.pem'), secret: undefined }])).toThrow(
      /audit sink "w": cannot read ca_file .*missing\.pem/,
    );
  });
});

describe('the runtime streams the audit log to configured sinks', () => {
  let dir: string;
  let runtime: Runtime | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-sinks-runtime-'));
  });
  afterAll(async () => {
    await runtime?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers integrated events to a JSONL file, keeps the cursor across a restart, and reports lag', async () => {
    const configPath = join(dir, 'rampart.yaml');
    writeFileSync(configPath, 'audit_sinks:\n  - { name: archive, type: jsonl, path: audit/rampart.jsonl }\n');
    (await import('node:fs')).mkdirSync(join(dir, 'audit'));
    const config = resolveServerConfig({ config: configPath, dataDir: join(dir, 'data'), logLevel: 'silent' }, {});
    const clock = new ManualClock();
    const file = join(dir, 'audit', 'rampart.jsonl');
    const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);
    const waitForLines = async (n: number) => {
      for (let i = 0; i < 2000 && lines().length < n; i++) await new Promise((r) => setTimeout(r, 2));
      expect(lines()).toHaveLength(n);
    };

    runtime = await startRuntime(config, { clock, logger: createLogger({ level: 'silent' }), integrateEveryMs: 0 });
    await runtime.audit.integrateAll();
    runtime.auditSinks.notify();
    await waitForLines(1); // the first-start bootstrap event
    expect(JSON.parse(lines()[0]!)).toMatchObject({ leaf_index: 0, event: { action: 'system:bootstrap' } });

    for (let i = 0; i < 3; i++) await runtime.audit.append(event(clock, i));
    await runtime.audit.integrateAll();
    runtime.auditSinks.notify();
    await waitForLines(4);
    // The file has the lines once written; the cursor moves after the fsync.
    for (let i = 0; i < 2000 && runtime.auditSinks.status()[0]!.nextLeafIndex !== 4; i++) await new Promise((r) => setTimeout(r, 2));
    expect(runtime.auditSinks.status()[0]).toMatchObject({ name: 'archive', nextLeafIndex: 4, lag: 0, consecutiveFailures: 0 });
    const metrics = await runtime.metrics.registry.getSingleMetricAsString('rampart_audit_sink_lag_events');
    expect(metrics).toContain('rampart_audit_sink_lag_events{sink="archive"} 0');
    await runtime.close();
    runtime = undefined;

    // Restart: nothing is delivered twice, and new events follow.
    runtime = await startRuntime(config, { clock, logger: createLogger({ level: 'silent' }), integrateEveryMs: 0 });
    await runtime.audit.append(event(clock, 3));
    await runtime.audit.integrateAll();
    runtime.auditSinks.notify();
    await waitForLines(5);
    const stored = await runtime.database.db.selectFrom('audit_events').select(['leaf_index', 'payload']).orderBy('leaf_index').execute();
    expect(lines()).toEqual(stored.map((r) => `{"leaf_index":${Number(r.leaf_index)},"event":${r.payload}}`));
  });
});

function event(clock: ManualClock, seq: number): AuditEvent {
  return testEvent(seq, { time: clock.now().toISOString() });
}
