import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { Checkpointer } from '../src/audit/checkpointer.js';
import type { Sealer } from '../src/core/sealer.js';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from '../src/audit/event.js';
import { AuditLog } from '../src/audit/log.js';
import { parseVerifierKey } from '../src/audit/note.js';
import { TileHashes } from '../src/audit/tiles.js';
import { storeLogSource, verifyLog } from '../src/audit/verify.js';
import { systemClock } from '../src/core/clock.js';
import { SqlAuditStore } from '../src/store/audit-store.js';
import { SqlCheckpointStore } from '../src/store/checkpoint-store.js';
import { openDatabase } from '../src/store/database.js';

/**
 * The audit log's integrity path: durable appends per second, the latency from an append to a
 * signed checkpoint covering it, inclusion-proof latency from tiles at a large tree size, and
 * full verification speed. One JSON line per figure on stdout (bench/README.md).
 *
 *   npx tsx bench/audit.ts
 *   BENCH_SECONDS=3 BENCH_AUDIT_LEAVES=1000000 npx tsx bench/audit.ts
 *
 * SQLite in a temporary directory with synchronous = FULL (what a server runs). The 1M-leaf tree
 * for proofs is synthesized straight into the store (leaf hashes only; proofs do not read
 * payloads); everything else runs through AuditLog and the Checkpointer.
 */

const BENCH = 'audit';
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const largeLeaves = Number(process.env.BENCH_AUDIT_LEAVES ?? 1_000_000);
const emit = (metric: string, value: number, unit: string, extra: Record<string, unknown> = {}): void =>
  void process.stdout.write(`${JSON.stringify({ bench: BENCH, ...extra, metric, value: Math.round(value * 1000) / 1000, unit })}\n`);

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

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-'));
  const database = await openDatabase({ dataDir });
  try {
    const store = new SqlAuditStore(database.db, database.dialect);
    const checkpoints = new SqlCheckpointStore(database.db, database.dialect);
    const log = new AuditLog({ store, clock: systemClock });
    const checkpointer = await Checkpointer.open({ checkpoints, audit: store, sealer, clock: systemClock });

    // 1. Durable appends: 256 concurrent callers, group-committed.
    let appended = 0;
    const until = performance.now() + seconds * 1000;
    const started = performance.now();
    while (performance.now() < until) {
      await Promise.all(Array.from({ length: 256 }, () => log.append(event())));
      appended += 256;
    }
    emit('appends_durable', appended / ((performance.now() - started) / 1000), 'events/s', { store: 'sqlite' });

    const t0 = performance.now();
    await log.integrateAll();
    await checkpointer.checkpoint();
    emit('integrate_and_checkpoint', appended / ((performance.now() - t0) / 1000), 'events/s', { entries: appended });

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
    emit('append_to_checkpoint_p50', percentile(samples, 50), 'ms');
    emit('append_to_checkpoint_p99', percentile(samples, 99), 'ms');

    // 3. Full verification of that log.
    const verifier = parseVerifierKey(checkpointer.verifierKey);
    const v0 = performance.now();
    const report = await verifyLog(storeLogSource(store, checkpoints), { verifier });
    if (!report.ok) throw new Error(`verification failed: ${JSON.stringify(report.problems.slice(0, 3))}`);
    emit('verify_entries', report.entriesChecked / ((performance.now() - v0) / 1000), 'entries/s', { entries: report.entriesChecked, checkpoints: report.checkpointsChecked });
    await log.close();
    await checkpointer.close();
  } finally {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  // 4. Inclusion proofs from tiles at a large tree size (synthetic leaf hashes).
  const bigDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-big-'));
  const big = await openDatabase({ dataDir: bigDir });
  try {
    const s0 = performance.now();
    await sql`with recursive n(i) as (select 0 union all select i + 1 from n where i + 1 < ${largeLeaves})
      insert into audit_events (tenant, recorded_at, payload, leaf_index, leaf_hash)
      select 'default', '', '{}', i, printf('%064x', i) from n`.execute(big.db);
    process.stderr.write(`synthesized ${largeLeaves} leaves in ${Math.round(performance.now() - s0)} ms\n`);
    const store = new SqlAuditStore(big.db, big.dialect);
    const tiles = new TileHashes(async (start, end) => (await store.leafHashes(start, end)).map((h) => new Uint8Array(Buffer.from(h, 'hex'))));
    const c0 = performance.now();
    await tiles.inclusionProof(largeLeaves - 1, largeLeaves);
    emit('inclusion_proof_cold', performance.now() - c0, 'ms', { size: largeLeaves, note: 'first proof computes every full-tile root once' });
    const lat: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const index = Math.floor(Math.random() * largeLeaves);
      const p0 = performance.now();
      await tiles.inclusionProof(index, largeLeaves);
      lat.push(performance.now() - p0);
    }
    lat.sort((a, b) => a - b);
    emit('inclusion_proof_p50', percentile(lat, 50), 'ms', { size: largeLeaves });
    emit('inclusion_proof_p99', percentile(lat, 99), 'ms', { size: largeLeaves });
  } finally {
    await big.close();
    rmSync(bigDir, { recursive: true, force: true });
  }
}

await main();
