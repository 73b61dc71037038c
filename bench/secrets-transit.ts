import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactUrl, resolveServerConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { startRuntime } from '../src/runtime.js';
import { decrypt, encrypt } from '../src/secrets/transit/encryption.js';
import { TransitKeys } from '../src/secrets/transit/keys.js';
import { type LoadTarget, type Quantile, keepAliveAgent, quantilesOf, runLoad, send } from './load.js';
import { createThrowawayDatabase } from '../test/support/throwaway-database.js';
import { emitter, note, positiveNumber, round } from './report.js';
import { listenHttps } from './listening.js';

/**
 * The transit benchmark: aes256-gcm96 encrypt and decrypt per second with p50/p99, single items
 * and batches, in-process (the domain call as the engine makes it: key row and version row read
 * from SQLite, material unsealed, one AEAD operation) and over HTTPS through the whole Vault path
 * (token authentication, Cedar ACL check, the engine, a durable audit event). One JSON line per
 * figure on stdout; notes on stderr.
 *
 *   npx tsx bench/secrets-transit.ts
 *   BENCH_SECONDS=3 BENCH_CONCURRENCY=16 BENCH_BATCH=100 npx tsx bench/secrets-transit.ts
 *   RAMPART_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/secrets-transit.ts
 *
 * With RAMPART_BENCH_DATABASE_URL every case also runs on a throwaway PostgreSQL database.
 */

const BENCH = 'secrets-transit';
const seconds = positiveNumber('BENCH_SECONDS', 5);
const concurrency = Math.round(positiveNumber('BENCH_CONCURRENCY', 16));
const batchSize = Math.round(positiveNumber('BENCH_BATCH', 100));
const plaintextBytes = Math.round(positiveNumber('BENCH_PLAINTEXT_BYTES', 64));
const pgAdminUrl = process.env.RAMPART_BENCH_DATABASE_URL || undefined;

const emitLine = emitter(BENCH);
let store: 'sqlite' | 'postgres' = 'sqlite';
const emit = (line: Record<string, unknown>) => emitLine(line.case === undefined ? line : { case: line.case, store, ...line });

function emitCase(name: string, ops: number, itemsPerOp: number, elapsedMs: number, latency: Quantile, errors: number): void {
  emit({ case: name, metric: 'throughput', value: round((ops / elapsedMs) * 1000, 1), unit: 'ops/s' });
  if (itemsPerOp > 1) emit({ case: name, metric: 'items', value: round(((ops * itemsPerOp) / elapsedMs) * 1000, 1), unit: 'items/s' });
  emit({ case: name, metric: 'p50', value: round(latency(0.5), 3), unit: 'ms' });
  emit({ case: name, metric: 'p99', value: round(latency(0.99), 3), unit: 'ms' });
  emit({ case: name, metric: 'errors', value: errors, unit: 'count' });
}

/** Runs `op` back to back for the configured time; returns the count, elapsed time and latency quantiles. */
async function closedLoop(op: () => Promise<unknown>): Promise<{ ops: number; elapsedMs: number; latency: Quantile }> {
  const latencies: number[] = [];
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const t = performance.now();
    await op();
    latencies.push(performance.now() - t);
  }
  return { ops: latencies.length, elapsedMs: performance.now() - started, latency: quantilesOf(Float64Array.from(latencies).sort()) };
}

async function main(): Promise<void> {
  emit({ metric: 'env', value: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', stores: pgAdminUrl ? ['sqlite', 'postgres'] : ['sqlite'], seconds, concurrency, batch: batchSize, plaintext_bytes: plaintextBytes } });
  await runOn(undefined);
  if (pgAdminUrl) {
    note(`PostgreSQL: a throwaway database on ${redactUrl(pgAdminUrl)}`);
    const created = await createThrowawayDatabase(pgAdminUrl, 'rampart_bench');
    store = 'postgres';
    try {
      await runOn(created.url);
    } finally {
      await created.drop();
    }
  }
}

async function runOn(databaseUrl: string | undefined): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-transit-'));
  const config = resolveServerConfig({ dataDir, databaseUrl, listen: '127.0.0.1:0', logLevel: 'silent' }, {});
  const runtime = await startRuntime(config, { logger: createLogger({ level: 'silent' }) });
  try {
    const plaintext = Buffer.alloc(plaintextBytes, 7);
    const ref = { tenant: 'default', mount: 'bench_transit', name: 'bench' };
    const keys = () => new TransitKeys(runtime.stores.transitKeys, runtime.secretsSeal.barrier, runtime.clock);
    await keys().create(ref, { type: 'aes256-gcm96', derived: false, exportable: false, allowPlaintextBackup: false });
    const sample = (await encrypt(await keys().open(ref), { plaintext })).ciphertext;

    // In-process: each op opens the key as the engine does per request (two indexed reads, one unseal).
    const encryptOne = await closedLoop(async () => encrypt(await keys().open(ref), { plaintext }));
    emitCase('inproc-encrypt', encryptOne.ops, 1, encryptOne.elapsedMs, encryptOne.latency, 0);
    const decryptOne = await closedLoop(async () => decrypt(await keys().open(ref), { ciphertext: sample }));
    emitCase('inproc-decrypt', decryptOne.ops, 1, decryptOne.elapsedMs, decryptOne.latency, 0);
    const encryptBatch = await closedLoop(async () => {
      const key = await keys().open(ref);
      for (let i = 0; i < batchSize; i++) await encrypt(key, { plaintext });
    });
    emitCase('inproc-encrypt-batch', encryptBatch.ops, batchSize, encryptBatch.elapsedMs, encryptBatch.latency, 0);
    const decryptBatch = await closedLoop(async () => {
      const key = await keys().open(ref);
      for (let i = 0; i < batchSize; i++) await decrypt(key, { ciphertext: sample });
    });
    emitCase('inproc-decrypt-batch', decryptBatch.ops, batchSize, decryptBatch.elapsedMs, decryptBatch.latency, 0);

    await overHttps(runtime, plaintext);
  } finally {
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function overHttps(runtime: Awaited<ReturnType<typeof startRuntime>>, plaintext: Buffer): Promise<void> {
  const { app, base } = await listenHttps(runtime);
  const agent = keepAliveAgent({ concurrency, ca: runtime.trustBundlePem });
  const headers = { 'x-vault-token': readFileSync(runtime.files.adminToken, 'utf8').trim(), 'content-type': 'application/json' };
  try {
    const mounted = await send(agent, { url: `${base}/v1/sys/mounts/transit`, method: 'POST', headers, body: JSON.stringify({ type: 'transit' }) });
    if (mounted.status >= 300) throw new Error(`mounting transit failed: HTTP ${mounted.status} ${mounted.body}`);
    const created = await send(agent, { url: `${base}/v1/transit/keys/bench`, method: 'POST', headers, body: '{}' });
    if (created.status >= 300) throw new Error(`creating the key failed: HTTP ${created.status} ${created.body}`);
    const b64 = plaintext.toString('base64');
    const first = await send(agent, { url: `${base}/v1/transit/encrypt/bench`, method: 'POST', headers, body: JSON.stringify({ plaintext: b64 }) });
    const ciphertext = (JSON.parse(first.body) as { data: { ciphertext: string } }).data.ciphertext;
    const batch = (item: Record<string, string>) => JSON.stringify({ batch_input: Array.from({ length: batchSize }, () => item) });
    // The baseline: the same Vault request path (token, Cedar, audit) around a handler that does no cryptography.
    const cases: Array<[string, number, LoadTarget]> = [
      ['https-vault-baseline', 1, { url: `${base}/v1/auth/token/lookup-self`, method: 'GET', headers: { 'x-vault-token': headers['x-vault-token'] } }],
      ['https-encrypt', 1, { url: `${base}/v1/transit/encrypt/bench`, method: 'POST', headers, body: JSON.stringify({ plaintext: b64 }) }],
      ['https-decrypt', 1, { url: `${base}/v1/transit/decrypt/bench`, method: 'POST', headers, body: JSON.stringify({ ciphertext }) }],
      ['https-encrypt-batch', batchSize, { url: `${base}/v1/transit/encrypt/bench`, method: 'POST', headers, body: batch({ plaintext: b64 }) }],
      ['https-decrypt-batch', batchSize, { url: `${base}/v1/transit/decrypt/bench`, method: 'POST', headers, body: batch({ ciphertext }) }],
    ];
    for (const [name, items, target] of cases) {
      await runLoad(agent, target, { concurrency, durationMs: 500 });
      const r = await runLoad(agent, target, { concurrency, durationMs: seconds * 1000 });
      if (r.firstError) note(`${name}: first error: ${r.firstError}`);
      emitCase(name, r.ok, items, r.elapsedMs, r.latencyMs, r.errors);
    }
  } finally {
    agent.destroy();
    await app.close();
  }
}

main().catch((err: unknown) => {
  note(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
