import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Checkpointer } from '../src/audit/checkpointer.js';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from '../src/audit/event.js';
import { AuditLog } from '../src/audit/log.js';
import { parseVerifierKey } from '../src/audit/note.js';
import { TileHashes } from '../src/audit/tiles.js';
import { storeTreeReader } from '../src/audit/tree-reader.js';
import { storeLogSource, tlogSource, verifyLog } from '../src/audit/verify.js';
import { tlogFetcher } from '../src/cli/commands/audit-verify.js';
import { systemClock } from '../src/core/clock.js';
import { redactUrl, resolveServerConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { startRuntime } from '../src/runtime.js';
import { buildApp } from '../src/server/app.js';
import type { Sealer } from '../src/core/sealer.js';
import { SqlAuditStore } from '../src/store/audit-store.js';
import { backfillTreeNodes } from '../src/store/audit-tree-nodes.js';
import { SqlCheckpointStore } from '../src/store/checkpoint-store.js';
import { type StoreDatabase, openDatabase } from '../src/store/database.js';
import { startServerProcess } from '../test/support/processes.js';
import { createThrowawayDatabase } from '../test/support/throwaway-database.js';
import { emitter, note, positiveNumber, round } from './report.js';

/**
 * The audit log's integrity path: durable appends per second, the latency from an append to a
 * signed checkpoint covering it, full verification speed (`rampart audit verify --data-dir`),
 * and inclusion-proof latency at large tree sizes right after a restart. One JSON line per
 * figure on stdout (bench/README.md).
 *
 *   npx tsx bench/audit.ts
 *   BENCH_SECONDS=3 BENCH_AUDIT_VERIFY_ENTRIES=200000 BENCH_AUDIT_PROOF_SIZES=1000000 npx tsx bench/audit.ts
 *   BENCH_AUDIT_CASES=online BENCH_AUDIT_SERVER=inline npx tsx bench/audit.ts
 *   RAMPART_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/audit.ts
 *
 * SQLite runs in a temporary directory as a server runs it (every commit's WAL frames fdatasync'ed
 * before it is acknowledged, src/store/sqlite-durable-commit.ts); with
 * RAMPART_BENCH_DATABASE_URL the append, checkpoint and verify figures are also taken on a
 * throwaway PostgreSQL database. Everything runs through AuditLog, the Checkpointer and the
 * verifier, except the large proof trees, which are synthesized (see proofBench).
 */

const emit = emitter('audit');
const seconds = positiveNumber('BENCH_SECONDS', 3);
const proofSizes = (process.env.BENCH_AUDIT_PROOF_SIZES ?? '1000000,10000000').split(',').filter((s) => s !== '').map(Number);
const pgAdminUrl = process.env.RAMPART_BENCH_DATABASE_URL || undefined;
const verifyEntries = positiveNumber('BENCH_AUDIT_VERIFY_ENTRIES', 200_000);
const onlineEntries = positiveNumber('BENCH_AUDIT_ONLINE_ENTRIES', 100_000);
/** Which parts run: any of `log`, `online`, `proofs` (default all), e.g. BENCH_AUDIT_CASES=online. */
const cases = new Set((process.env.BENCH_AUDIT_CASES ?? 'log,online,proofs').split(',').map((c) => c.trim()));
/**
 * Where the online case's server runs: `process` (default) is `rampart server` as its own
 * process, as a user runs it, so the client's and the server's CPU are measured apart; `inline`
 * builds the app in this process (client + server in one figure, as the first measurements did).
 */
const onlineServer = process.env.BENCH_AUDIT_SERVER ?? 'process';
if (onlineServer !== 'process' && onlineServer !== 'inline') throw new Error(`BENCH_AUDIT_SERVER must be process or inline (got "${onlineServer}")`);

const sealer: Sealer = { encrypt: (_t, _i, p) => Buffer.from(p).toString('base64'), decrypt: (_t, _i, c) => Buffer.from(c, 'base64') };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

let seq = 0;
function event(): AuditEvent {
  seq++;
  return {
    schema_version: AUDIT_SCHEMA_VERSION,
    time: new Date().toISOString(),
    tenant: 'default',
    request_id: `bench-${seq}`,
    source_ip: '127.0.0.1',
    principal: { type: 'Rampart::Token', id: 'acc_bench', tenant: 'default', auth_method: 'token' },
    action: 'token:lookup-self',
    resource: { type: 'Rampart::Token', id: 'acc_bench' },
    outcome: 'success',
    authorization: { decision: 'allow', policies: ['tenant-admin'], policy_version: 1 },
    error_code: null,
    http: { method: 'GET', route: '/v1/tokens/self', status: 200 },
  };
}

/** Appends, append-to-checkpoint latency and offline verification on one store. */
async function logBench(store: 'sqlite' | 'postgres', database: StoreDatabase): Promise<void> {
  const audit = new SqlAuditStore(database.db, database.dialect);
  const checkpoints = new SqlCheckpointStore(database.db, database.dialect);
  const log = new AuditLog({ store: audit, clock: systemClock });
  const checkpointer = await Checkpointer.open({ checkpoints, audit, sealer, clock: systemClock });

  // 1. Durable appends: 512 concurrent callers, group-committed.
  let appended = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  while (performance.now() < until) {
    await Promise.all(Array.from({ length: 512 }, () => log.append(event())));
    appended += 512;
  }
  emit({ store, metric: 'appends_durable', value: round(appended / ((performance.now() - started) / 1000), 0), unit: 'events/s' });

  const t0 = performance.now();
  await log.integrateAll();
  await checkpointer.checkpoint();
  emit({ store, entries: appended, metric: 'integrate_and_checkpoint', value: round(appended / ((performance.now() - t0) / 1000), 0), unit: 'events/s' });

  // 2. Append → integrated → signed checkpoint covering it (the 1 s rate limit excluded).
  const samples: number[] = [];
  for (let i = 0; i < 300; i++) {
    const s = performance.now();
    await log.append(event());
    await log.integrate();
    await checkpointer.checkpoint();
    samples.push(performance.now() - s);
  }
  samples.sort((a, b) => a - b);
  emit({ store, metric: 'append_to_checkpoint_p50', value: round(percentile(samples, 50), 3), unit: 'ms' });
  emit({ store, metric: 'append_to_checkpoint_p99', value: round(percentile(samples, 99), 3), unit: 'ms' });

  // 3. Full offline verification (what `rampart audit verify --data-dir` runs) of a log of at
  // least BENCH_AUDIT_VERIFY_ENTRIES real events: topped up through the store in batches, with a
  // checkpoint every 10,000 entries, so the figure does not depend on how fast appends ran.
  for (let have = await audit.count(), batch = 1; have < verifyEntries; have += 2000, batch++) {
    await audit.insert(Array.from({ length: 2000 }, () => log.rowFor(event())));
    await log.integrateAll();
    if (batch % 5 === 0) await checkpointer.checkpoint();
  }
  await checkpointer.checkpoint();
  const verifier = parseVerifierKey(checkpointer.verifierKey);
  const v0 = performance.now();
  const cpu0 = process.cpuUsage();
  const report = await verifyLog(storeLogSource(audit, checkpoints), { verifier });
  const cpu = process.cpuUsage(cpu0);
  if (!report.ok) throw new Error(`verification failed: ${JSON.stringify(report.problems.slice(0, 3))}`);
  const wall = (performance.now() - v0) / 1000;
  emit({ store, entries: report.entriesChecked, checkpoints: report.checkpointsChecked, metric: 'verify_entries', value: round(report.entriesChecked / wall, 0), unit: 'entries/s' });
  // CPU time is what the machine's other load cannot inflate: the figure on an idle machine.
  emit({ store, metric: 'verify_entries_per_cpu_second', value: round(report.entriesChecked / ((cpu.user + cpu.system) / 1e6), 0), unit: 'entries/s' });
  await log.close();
  await checkpointer.close();
}

/**
 * Builds a tree of `size` synthetic leaves (leaf i's hash is i as 64 hex digits; proofs never
 * read payloads) with one INSERT … SELECT, stores its interior nodes with the code that
 * backfills a migrated log (src/store/audit-tree-nodes.ts), closes the database, and measures
 * proofs from freshly opened ones: nothing is cached between proofs, so the first proof after
 * a restart costs what the others do.
 */
async function proofBench(size: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-big-'));
  try {
    const build = await openDatabase({ dataDir: dir });
    try {
      const s0 = performance.now();
      await sql`with recursive n(i) as (select 0 union all select i + 1 from n where i + 1 < ${size})
        insert into audit_events (tenant, recorded_at, payload, leaf_index, leaf_hash)
        select 'default', '', '{}', i, printf('%064x', i) from n`.execute(build.db);
      const nodes = await backfillTreeNodes(build.db, build.dialect, size);
      note(`synthesized ${size} leaves and ${nodes} tree nodes in ${Math.round(performance.now() - s0)} ms`);
    } finally {
      await build.close();
    }
    // The first proof after each of five restarts (reopenings): the median is the figure.
    const firsts: number[] = [];
    for (let restart = 0; restart < 5; restart++) {
      const db = await openDatabase({ dataDir: dir });
      try {
        const tiles = new TileHashes(storeTreeReader(new SqlAuditStore(db.db, db.dialect)));
        const c0 = performance.now();
        await tiles.inclusionProof(Math.floor(Math.random() * size), size);
        firsts.push(performance.now() - c0);
      } finally {
        await db.close();
      }
    }
    firsts.sort((a, b) => a - b);
    emit({ store: 'sqlite', size, restarts: firsts.length, metric: 'inclusion_proof_first_after_restart', value: round(percentile(firsts, 50), 3), unit: 'ms', max: round(firsts.at(-1) ?? 0, 3) });
    const db = await openDatabase({ dataDir: dir });
    try {
      const tiles = new TileHashes(storeTreeReader(new SqlAuditStore(db.db, db.dialect)));
      const lat: number[] = [];
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < 2000; i++) {
        const index = Math.floor(Math.random() * size);
        const p0 = performance.now();
        await tiles.inclusionProof(index, size);
        lat.push(performance.now() - p0);
      }
      const cpu = process.cpuUsage(cpu0);
      lat.sort((a, b) => a - b);
      emit({ store: 'sqlite', size, metric: 'inclusion_proof_cpu_mean', value: round((cpu.user + cpu.system) / 1000 / lat.length, 3), unit: 'ms' });
      emit({ store: 'sqlite', size, metric: 'inclusion_proof_p50', value: round(percentile(lat, 50), 3), unit: 'ms' });
      emit({ store: 'sqlite', size, metric: 'inclusion_proof_p99', value: round(percentile(lat, 99), 3), unit: 'ms' });
    } finally {
      await db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `rampart audit verify` online with the server in this process (BENCH_AUDIT_SERVER=inline): the
 * real server on SQLite over HTTPS, a log of
 * BENCH_AUDIT_ONLINE_ENTRIES events written through its store, verified from the tiles with the
 * CLI's own fetcher (every bundle request authenticated, authorized and audited; hash tiles are
 * public). Client and server share this process, so every CPU figure is client + server.
 *
 * Three cases, each with a fresh fetcher (new TLS connections): `first` is the first run of the
 * process (cold JIT, cold tile cache: what the old single figure measured); `cold_cache` a later
 * run against a freshly built app (warm JIT, empty tile cache: a server's first verification
 * after a restart); `warm_cache` a run against the app that just served everything (tiles and
 * bundles from memory: every later verification, while they stay cached).
 */
async function onlineVerifyBenchInline(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-online-'));
  try {
    const config = resolveServerConfig({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent' }, {});
    const runtime = await startRuntime(config, { logger: createLogger({ level: 'silent' }), integrateEveryMs: 0 });
    const serve = async (): Promise<{ app: FastifyInstance; addr: string }> => {
      const app = await buildApp(runtime, { https: { key: runtime.tls.keyPem, cert: runtime.tls.certPem, ca: runtime.trustBundlePem, minVersion: 'TLSv1.3' } });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.server.address();
      return { app, addr: `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
    };
    let server = await serve();
    try {
      for (let have = 0; have < onlineEntries; have += 2000) {
        await runtime.stores.audit.insert(Array.from({ length: 2000 }, () => runtime.audit.rowFor(event())));
        await runtime.audit.integrateAll();
      }
      await runtime.checkpointer.checkpoint();
      const token = readFileSync(runtime.files.adminToken, 'utf8').trim();
      const verifier = parseVerifierKey(runtime.checkpointer.verifierKey);
      const verifyOnce = async (run: string): Promise<void> => {
        const fetcher = tlogFetcher({ addr: server.addr, token, caPem: Buffer.from(runtime.trustBundlePem), tenant: undefined });
        try {
          const v0 = performance.now();
          const cpu0 = process.cpuUsage();
          const report = await verifyLog(tlogSource((path) => fetcher.get(`/v1/audit/tlog/${path}`)), { verifier });
          const cpu = process.cpuUsage(cpu0);
          const wall = (performance.now() - v0) / 1000;
          if (!report.ok) throw new Error(`online verification failed: ${JSON.stringify(report.problems.slice(0, 3))}`);
          const metric = run === 'first' ? 'verify_online_entries' : `verify_online_entries_${run}`;
          emit({ store: 'sqlite', server: 'inline', run, entries: report.entriesChecked, tiles: report.tilesChecked, metric, value: round(report.entriesChecked / wall, 0), unit: 'entries/s' });
          // CPU time of every thread of the process (client, server and the leaf-hashing worker).
          emit({ store: 'sqlite', server: 'inline', run, metric: `${metric}_cpu_seconds_per_100k`, value: round(((cpu.user + cpu.system) / 1e6) * (100_000 / report.entriesChecked), 3), unit: 's' });
        } finally {
          fetcher.close();
        }
      };
      await verifyOnce('first');
      await server.app.close();
      server = await serve();
      await verifyOnce('cold_cache');
      await verifyOnce('warm_cache');
    } finally {
      await server.app.close();
      await runtime.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** User + system CPU seconds a process has used so far, from /proc/<pid>/stat (Linux). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name, which may itself hold spaces: utime and stime
  // are fields 14 and 15 of the line, so 12 and 13 after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/**
 * `rampart audit verify` online in the topology a user has: `rampart server` in its own process
 * (from source through tsx, as the integration tests start it) on a temporary SQLite data
 * directory and an ephemeral port, and the verifier (verifyLog over tlogSource and the CLI's
 * fetcher, with its leaf-hashing worker) in this process. The log of BENCH_AUDIT_ONLINE_ENTRIES
 * events is written through the store before the server starts, by a runtime opened on the same
 * data directory (faster than 100k audited API calls, and the rows are what the server writes).
 *
 * The client's CPU is this process's (main thread + worker, `process.cpuUsage`); the server's
 * is read from /proc/<pid>/stat before and after, so it includes whatever else the server did
 * meanwhile (integration ticks, auditing each bundle request). `first` and `cold_cache` each run
 * against a freshly started server (empty tile cache); `first` also has this process's JIT
 * cold; `warm_cache` runs again against the server that just served everything.
 */
async function onlineVerifyBenchProcess(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-online-'));
  try {
    const config = resolveServerConfig({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent' }, {});
    const runtime = await startRuntime(config, { logger: createLogger({ level: 'silent' }), integrateEveryMs: 0 });
    let token: string;
    let caPem: Buffer;
    let verifierKey: string;
    try {
      for (let have = 0; have < onlineEntries; have += 2000) {
        await runtime.stores.audit.insert(Array.from({ length: 2000 }, () => runtime.audit.rowFor(event())));
        await runtime.audit.integrateAll();
      }
      await runtime.checkpointer.checkpoint();
      token = readFileSync(runtime.files.adminToken, 'utf8').trim();
      caPem = Buffer.from(runtime.trustBundlePem);
      verifierKey = runtime.checkpointer.verifierKey;
    } finally {
      await runtime.close();
    }
    const verifier = parseVerifierKey(verifierKey);
    const verifyOnce = async (run: string, addr: string, pid: number): Promise<void> => {
      const fetcher = tlogFetcher({ addr, token, caPem, tenant: undefined });
      try {
        const v0 = performance.now();
        const server0 = processCpuSeconds(pid);
        const cpu0 = process.cpuUsage();
        const report = await verifyLog(tlogSource((path) => fetcher.get(`/v1/audit/tlog/${path}`)), { verifier });
        const cpu = process.cpuUsage(cpu0);
        const serverCpu = processCpuSeconds(pid) - server0;
        const wall = (performance.now() - v0) / 1000;
        if (!report.ok) throw new Error(`online verification failed: ${JSON.stringify(report.problems.slice(0, 3))}`);
        const per100k = 100_000 / report.entriesChecked;
        const metric = run === 'first' ? 'verify_online_entries' : `verify_online_entries_${run}`;
        const tags = { store: 'sqlite', server: 'process', run };
        emit({ ...tags, entries: report.entriesChecked, tiles: report.tilesChecked, metric, value: round(report.entriesChecked / wall, 0), unit: 'entries/s' });
        emit({ ...tags, metric: `${metric}_client_cpu_seconds_per_100k`, value: round(((cpu.user + cpu.system) / 1e6) * per100k, 3), unit: 's' });
        emit({ ...tags, metric: `${metric}_server_cpu_seconds_per_100k`, value: round(serverCpu * per100k, 3), unit: 's' });
      } finally {
        fetcher.close();
      }
    };
    const start = () => startServerProcess(['--data-dir', dataDir], { RAMPART_LOG_LEVEL: 'error' });
    let server = await start();
    try {
      await verifyOnce('first', server.addr, server.child.pid as number);
      await server.stop();
      server = await start();
      await verifyOnce('cold_cache', server.addr, server.child.pid as number);
      await verifyOnce('warm_cache', server.addr, server.child.pid as number);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (cases.has('log')) {
    const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-'));
    const database = await openDatabase({ dataDir });
    try {
      await logBench('sqlite', database);
    } finally {
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  if (pgAdminUrl && cases.has('log')) {
    note(`PostgreSQL: a throwaway database on ${redactUrl(pgAdminUrl)}`);
    const created = await createThrowawayDatabase(pgAdminUrl, 'rampart_bench');
    const pgDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-pg-'));
    const pg = await openDatabase({ dataDir: pgDir, databaseUrl: created.url });
    try {
      await logBench('postgres', pg);
    } finally {
      await pg.close();
      await created.drop();
      rmSync(pgDir, { recursive: true, force: true });
    }
  }
  if (cases.has('online')) await (onlineServer === 'process' ? onlineVerifyBenchProcess() : onlineVerifyBenchInline());
  if (cases.has('proofs')) for (const size of proofSizes) await proofBench(size);
}

await main();
