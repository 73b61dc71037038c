import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 *   RAMPART_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/audit.ts
 *
 * SQLite runs in a temporary directory with synchronous = FULL (what a server runs); with
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
      const nodes = await backfillTreeNodes(build.db, size);
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
 * `rampart audit verify` online: the real server on SQLite over HTTPS, a log of
 * BENCH_AUDIT_ONLINE_ENTRIES events written through its store, verified from the tiles with the
 * CLI's own fetcher (every bundle and tile request authenticated, authorized and audited).
 */
async function onlineVerifyBench(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-online-'));
  try {
    const config = resolveServerConfig({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent' }, {});
    const runtime = await startRuntime(config, { logger: createLogger({ level: 'silent' }), integrateEveryMs: 0 });
    const app = await buildApp(runtime, { https: { key: runtime.tls.keyPem, cert: runtime.tls.certPem, ca: runtime.trustBundlePem, minVersion: 'TLSv1.3' } });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.server.address();
      const addr = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      for (let have = 0; have < onlineEntries; have += 2000) {
        await runtime.stores.audit.insert(Array.from({ length: 2000 }, () => runtime.audit.rowFor(event())));
        await runtime.audit.integrateAll();
      }
      await runtime.checkpointer.checkpoint();
      const fetcher = tlogFetcher({ addr, token: readFileSync(runtime.files.adminToken, 'utf8').trim(), caPem: Buffer.from(runtime.trustBundlePem), tenant: undefined });
      try {
        const v0 = performance.now();
        const report = await verifyLog(tlogSource((path) => fetcher.get(`/v1/audit/tlog/${path}`)), { verifier: parseVerifierKey(runtime.checkpointer.verifierKey) });
        if (!report.ok) throw new Error(`online verification failed: ${JSON.stringify(report.problems.slice(0, 3))}`);
        emit({ store: 'sqlite', entries: report.entriesChecked, tiles: report.tilesChecked, metric: 'verify_online_entries', value: round(report.entriesChecked / ((performance.now() - v0) / 1000), 0), unit: 'entries/s' });
      } finally {
        fetcher.close();
      }
    } finally {
      await app.close();
      await runtime.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-'));
  const database = await openDatabase({ dataDir });
  try {
    await logBench('sqlite', database);
  } finally {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  if (pgAdminUrl) {
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
  await onlineVerifyBench();
  for (const size of proofSizes) await proofBench(size);
}

await main();
