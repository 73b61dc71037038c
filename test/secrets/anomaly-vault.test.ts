import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEARNING_MS, LEARNING_READS } from '../../src/secrets/anomaly.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/** Anomaly findings on secret reads through the Vault API (docs/secrets.md, "Anomaly detection"). */
describe.each(TEST_DATABASES)('secret read anomalies ($name)', (database) => {
  let s: TestServer;
  const call = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
    s.app.inject({ method, url, headers: { 'x-vault-token': s.adminToken }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
  const findings = async () =>
    (await s.runtime.database.db.selectFrom('audit_events').select('payload').execute())
      .map((r) => r.payload)
      .filter((p) => p.includes('"secrets:anomaly"'));

  beforeAll(async () => {
    s = await startTestServer({ database });
    expect((await call('POST', '/v1/sys/mounts/secret', { type: 'kv', options: { version: '2' } })).statusCode).toBeLessThan(300);
    expect((await call('POST', '/v1/secret/data/app/db', { data: { password: 'hunter2-secret' } })).statusCode).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('learns quietly, then records a read outside the baseline in the audit log and the metric', async () => {
    for (let i = 0; i < LEARNING_READS; i++) {
      expect((await call('GET', '/v1/secret/data/app/db')).statusCode).toBe(200);
      s.clock.advance(60_000);
    }
    expect(await findings()).toEqual([]);

    // A day and an hour later: an hour of day this principal has never read at.
    s.clock.advance(LEARNING_MS + 60 * 60_000);
    const read = await call('GET', '/v1/secret/data/app/db');
    expect(read.statusCode).toBe(200);
    expect(read.json().data.data).toEqual({ password: 'hunter2-secret' });

    const [payload, ...rest] = await findings();
    expect(rest).toEqual([]);
    const event = JSON.parse(payload!);
    expect(event).toMatchObject({
      action: 'secrets:anomaly',
      outcome: 'success',
      tenant: 'default',
      resource: { type: 'Rampart::VaultPath', id: 'secret/data/app/db' },
      details: { kind: 'unusual_hour', path: 'secret/data/app/db', prefix: 'secret/data', baseline_reads: LEARNING_READS, baseline_hour_share: 0 },
    });
    expect(event.details.principal).toMatch(/^Rampart::Token::/);
    expect(payload).not.toContain('hunter2');

    const metrics = await s.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^rampart_secret_access_anomalies_total\{kind="unusual_hour"\} 1$/m);
  });

  it('does not watch writes or metadata reads', async () => {
    const before = (await findings()).length;
    s.clock.advance(3 * 60 * 60_000);
    expect((await call('GET', '/v1/secret/metadata/app/db')).statusCode).toBe(200);
    expect((await call('POST', '/v1/secret/data/app/other', { data: { v: 1 } })).statusCode).toBe(200);
    expect((await findings()).length).toBe(before);
  });

  it('flags the first read under a mount this principal never read, without refusing it', async () => {
    expect((await call('POST', '/v1/sys/mounts/payroll', { type: 'kv', options: { version: '2' } })).statusCode).toBeLessThan(300);
    expect((await call('POST', '/v1/payroll/data/ceo', { data: { salary: 'top-secret-figure' } })).statusCode).toBe(200);
    const before = (await findings()).length;
    expect((await call('GET', '/v1/payroll/data/ceo')).statusCode).toBe(200);
    const added = (await findings()).slice(before).map((p) => JSON.parse(p).details);
    expect(added.map((d: { kind: string }) => d.kind)).toContain('new_prefix');
    expect(added.find((d: { kind: string }) => d.kind === 'new_prefix')).toMatchObject({ prefix: 'payroll/data', baseline_prefixes: 1 });
    expect(JSON.stringify(added)).not.toContain('top-secret');
  });
});
