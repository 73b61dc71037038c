import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ManualClock } from '../src/core/clock.js';
import { resolveServerConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { type Runtime, startRuntime } from '../src/runtime.js';
import { createCredential, recordCredential } from '../src/secrets/database/dynamic-credentials.js';
import { databasePlugin } from '../src/secrets/database/engine.js';
import { type LoadTarget, type Quantile, keepAliveAgent, quantilesOf, runLoad, send } from './load.js';
import { emitter, note, positiveNumber, round } from './report.js';
import { listenHttps } from './listening.js';

/**
 * Dynamic database credentials and lease expiry against the local PostgreSQL:
 *
 * - `issue`: `GET /v1/database/creds/<role>` over HTTPS through the whole Vault path (token,
 *   Cedar, a real `CREATE ROLE … IN ROLE <group>` committed in PostgreSQL behind a provisional
 *   lease, then the lease and its audit event in one store transaction), one at a time and then with `BENCH_CONCURRENCY` in flight; p50/p99 (goal: p99 ≤ 50 ms);
 *   `read-during-issue`: `GET database/roles/<role>` from 8 clients meanwhile.
 * - `expiry`: `BENCH_LEASES` leases (real PostgreSQL users) expire at once; the expiry worker
 *   revokes them (terminate sessions, reassign and drop owned, drop role) while clients keep
 *   reading `database/roles/<role>`; the time to revoke them all (goal ≤ 30 s for 10,000) and the
 *   read p99 during it against a baseline measured before (goal: within 2×).
 *
 * The store is SQLite in a temporary data directory; the target is a throwaway database and
 * connection user on `RAMPART_BENCH_TARGET_URL`, dropped at the end with every user made.
 *
 *   npx tsx bench/secrets-leases.ts
 *   BENCH_LEASES=2000 BENCH_SECONDS=3 npx tsx bench/secrets-leases.ts
 */

const BENCH = 'secrets-leases';
const seconds = positiveNumber('BENCH_SECONDS', 5);
const concurrency = Math.round(positiveNumber('BENCH_CONCURRENCY', 4));
const leases = Math.round(positiveNumber('BENCH_LEASES', 10_000));
const issues = Math.round(positiveNumber('BENCH_ISSUES', 300));
const adminUrl = process.env.RAMPART_BENCH_TARGET_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const emit = emitter(BENCH);

function emitLatency(name: string, latency: Quantile, count: number, elapsedMs: number): void {
  emit({ case: name, metric: 'throughput', value: round((count / elapsedMs) * 1000, 1), unit: 'ops/s' });
  emit({ case: name, metric: 'p50', value: round(latency(0.5), 2), unit: 'ms' });
  emit({ case: name, metric: 'p99', value: round(latency(0.99), 2), unit: 'ms' });
}

async function admin(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  emit({ metric: 'env', value: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', store: 'sqlite', seconds, concurrency, leases, issues } });
  const suffix = randomBytes(4).toString('hex');
  const dbName = `rampart_bench_target_${suffix}`;
  const rootUser = `rampart_bench_root_${suffix}`;
  // Users get their privileges through a group role, as PostgreSQL deployments should: a table's
  // ACL lives in its pg_class row, which has no TOAST and stops growing at about 8 kB, so granting
  // a table to thousands of users one by one fails ("row is too big").
  const group = `rampart_bench_readers_${suffix}`;
  const role = `bench${suffix}`;
  const targetUrl = new URL(adminUrl);
  targetUrl.pathname = `/${dbName}`;
  await admin(adminUrl, `create database ${dbName}`);
  await admin(adminUrl, `create role ${rootUser} login createrole password 'bench'`);
  await admin(adminUrl, `grant pg_signal_backend to ${rootUser}`);
  await admin(adminUrl, `create role ${group} nologin`);
  await admin(adminUrl, `grant ${group} to ${rootUser} with admin option`);
  await admin(targetUrl.toString(), `create table things (id int); alter table things owner to ${rootUser}; grant select on things to ${group}`);

  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-leases-'));
  const clock = new ManualClock(Date.now());
  const config = resolveServerConfig({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent' }, {});
  const runtime = await startRuntime(config, { clock, logger: createLogger({ level: 'silent' }), leaseExpiryEveryMs: 0 });
  const { app, base } = await listenHttps(runtime);
  const agent = keepAliveAgent({ concurrency: 16, ca: runtime.trustBundlePem });
  const token = readFileSync(runtime.files.adminToken, 'utf8').trim();
  const headers = { 'x-vault-token': token, 'content-type': 'application/json' };
  try {
    const call = async (path: string, method: 'GET' | 'POST', body?: unknown) => {
      const r = await send(agent, { url: `${base}/v1/${path}`, method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      if (r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.body}`);
      return r;
    };
    await call('sys/mounts/database', 'POST', { type: 'database' });
    const templateUrl = new URL(targetUrl);
    templateUrl.username = '{{username}}';
    templateUrl.password = '{{password}}';
    await call('database/config/pg', 'POST', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: decodeURI(templateUrl.toString()),
      username: rootUser,
      password: 'bench',
      allowed_roles: '*',
    });
    const creation = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE ${group}`];
    await call(`database/roles/${role}`, 'POST', { db_name: 'pg', creation_statements: creation, default_ttl: '1h', max_ttl: '1h' });

    const creds: LoadTarget = { url: `${base}/v1/database/creds/${role}`, method: 'GET', headers: { 'x-vault-token': token } };
    const sequential: number[] = [];
    const started = performance.now();
    for (let i = 0; i < issues; i++) {
      const t = performance.now();
      await call(`database/creds/${role}`, 'GET');
      sequential.push(performance.now() - t);
    }
    emitLatency('issue-sequential', quantilesOf(Float64Array.from(sequential).sort()), issues, performance.now() - started);
    const loaded = await runLoad(agent, creds, { concurrency, durationMs: seconds * 1000 });
    if (loaded.firstError) note(`issue-concurrent: first error: ${loaded.firstError}`);
    emitLatency(`issue-concurrency-${concurrency}`, loaded.latencyMs, loaded.ok, loaded.elapsedMs);
    emit({ case: `issue-concurrency-${concurrency}`, metric: 'errors', value: loaded.errors, unit: 'count' });
    // Then reads of the role while the same issues run: a user's creation on PostgreSQL happens
    // outside the store transaction, so it must not hold up other requests (compare read-baseline).
    const readers = keepAliveAgent({ concurrency: 8, ca: runtime.trustBundlePem });
    const readRole: LoadTarget = { url: `${base}/v1/database/roles/${role}`, method: 'GET', headers: { 'x-vault-token': token } };
    const [, reads] = await Promise.all([
      runLoad(agent, creds, { concurrency, durationMs: seconds * 1000 }),
      runLoad(readers, readRole, { concurrency: 8, durationMs: seconds * 1000 }),
    ]).finally(() => readers.destroy());
    emitLatency('read-during-issue', reads.latencyMs, reads.ok, reads.elapsedMs);

    await expiryCase(runtime, clock, base, token, role);
  } finally {
    agent.destroy();
    await app.close();
    await runtime.close();
    await databasePlugin.close();
    rmSync(dataDir, { recursive: true, force: true });
    await admin(adminUrl, `drop database if exists ${dbName} with (force)`);
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      const left = await client.query<{ rolname: string }>('select rolname from pg_roles where rolname like $1', [`v-%-${role.slice(0, 8)}-%`]);
      for (const r of left.rows) await client.query(`drop role if exists "${r.rolname.replaceAll('"', '""')}"`);
      await client.query(`drop role if exists ${group}`);
      await client.query(`drop role if exists ${rootUser}`);
    } finally {
      await client.end();
    }
  }
}

async function expiryCase(runtime: Runtime, clock: ManualClock, base: string, token: string, role: string): Promise<void> {
  const mount = (await runtime.stores.mounts.list('default')).find((m) => m.path === 'database');
  if (!mount) throw new Error('the database mount is missing');
  // Setup, not measured: real users and leases, each made as a request makes it (the user before
  // the store transaction, the lease in it), 8 at a time, without the HTTP and audit around it.
  const deps = { plugin: databasePlugin, sealer: runtime.secretsSeal.barrier, clock: runtime.clock };
  const setupStarted = performance.now();
  let made = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (made++ < leases) {
        const issued = await createCredential({ database: runtime.stores.database, transact: runtime.transact }, deps, { tenant: 'default', mount, role, displayName: 'bench' });
        await runtime.transact((stores) => recordCredential(stores.leases, issued));
      }
    }),
  );
  note(`made ${leases} users and leases in ${round((performance.now() - setupStarted) / 1000, 1)} s`);
  const due = async () => Number((await runtime.database.db.selectFrom('secrets_leases').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const total = await due();

  const agent = keepAliveAgent({ concurrency: 8, ca: runtime.trustBundlePem });
  const read: LoadTarget = { url: `${base}/v1/database/roles/${role}`, method: 'GET', headers: { 'x-vault-token': token } };
  try {
    const baseline = await runLoad(agent, read, { concurrency: 8, durationMs: seconds * 1000 });
    emitLatency('read-baseline', baseline.latencyMs, baseline.ok, baseline.elapsedMs);

    clock.advance(2 * 3600_000);
    let revoking = true;
    const latencies: number[] = [];
    let errors = 0;
    const readers = Array.from({ length: 8 }, async () => {
      while (revoking) {
        const t = performance.now();
        const r = await send(agent, read);
        if (r.status === 200) latencies.push(performance.now() - t);
        else errors++;
      }
    });
    const started = performance.now();
    let revoked = 0;
    let failed = 0;
    for (;;) {
      const pass = await runtime.leases.expiry.tick();
      revoked += pass.revoked;
      failed += pass.failed;
      if (pass.stopped === 'done' && (await due()) === 0) break;
      if (pass.revoked === 0 && pass.failed === 0 && pass.stopped === 'done') break;
    }
    const elapsedMs = performance.now() - started;
    revoking = false;
    await Promise.all(readers);
    emit({ case: 'expiry', metric: 'leases', value: total, unit: 'count' });
    emit({ case: 'expiry', metric: 'revoked', value: revoked, unit: 'count' });
    emit({ case: 'expiry', metric: 'failed_attempts', value: failed, unit: 'count' });
    emit({ case: 'expiry', metric: 'remaining', value: await due(), unit: 'count' });
    emit({ case: 'expiry', metric: 'duration', value: round(elapsedMs / 1000, 2), unit: 's' });
    emit({ case: 'expiry', metric: 'rate', value: round((revoked / elapsedMs) * 1000, 1), unit: 'leases/s' });
    const during = quantilesOf(Float64Array.from(latencies).sort());
    emitLatency('read-during-expiry', during, latencies.length, elapsedMs);
    emit({ case: 'read-during-expiry', metric: 'errors', value: errors, unit: 'count' });
    emit({ case: 'read-during-expiry', metric: 'p99_ratio_to_baseline', value: round(during(0.99) / baseline.latencyMs(0.99), 2), unit: 'x' });
  } finally {
    agent.destroy();
  }
}

main().catch((err: unknown) => {
  note(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
