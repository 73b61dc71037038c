import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { startRuntime } from '../src/runtime.js';
import { type LoadTarget, clientDescription, keepAliveAgent, loadMode, runLoad, send } from './load.js';
import { emitter, note, positiveNumber, round } from './report.js';
import { listenHttps } from './listening.js';

/**
 * The KV v2 benchmark of the Vault-compatible API: reads and durable writes per second with
 * p50/p99, over HTTPS through the whole request path (token authentication, the Cedar ACL check,
 * the engine, barrier encryption, a durable audit event; writes commit the version and its audit
 * event in one transaction). Goals on a 2-core machine: ≥ 10,000 reads/s with p99 ≤ 5 ms and
 * ≥ 1,000 durable writes/s. One JSON line per figure on stdout; notes on stderr.
 *
 *   npx tsx bench/secrets.ts
 *   BENCH_SECONDS=3 BENCH_CONCURRENCY=32 npx tsx bench/secrets.ts
 *   RAMPART_DATABASE_URL=postgres://… npx tsx bench/secrets.ts     # PostgreSQL instead of SQLite
 *   BENCH_CLIENT=inline npx tsx bench/secrets.ts                    # load generator on the server's event loop
 *   BENCH_SECRETS_CASES=kv-read npx tsx bench/secrets.ts            # some cases only (comma-separated)
 */

const BENCH = 'secrets';
const seconds = positiveNumber('BENCH_SECONDS', 5);
const concurrency = Math.round(positiveNumber('BENCH_CONCURRENCY', 32));
const GOALS = { reads_per_s: 10_000, read_p99_ms: 5, writes_per_s: 1_000 };

const emit = emitter(BENCH);

async function main(): Promise<void> {
  const databaseUrl = process.env.RAMPART_DATABASE_URL || undefined;
  emit({ metric: 'env', value: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', store: databaseUrl ? 'postgres' : 'sqlite', seconds, concurrency, client_mode: loadMode(), client: clientDescription() } });
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-secrets-'));
  const config = resolveServerConfig({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent', databaseUrl }, {});
  // A server integrates on the audit thread once it has integrated 4,096 audit events since it
  // started; the thread runs from the start here, so that its start-up is not in a measured window.
  const runtime = await startRuntime(config, { logger: createLogger({ level: 'silent' }), auditThreadAfter: 0 });
  const { app, base } = await listenHttps(runtime);
  const agent = keepAliveAgent({ concurrency, ca: runtime.trustBundlePem });
  const headers = { 'x-vault-token': readFileSync(runtime.files.adminToken, 'utf8').trim(), 'content-type': 'application/json' };
  try {
    const setup = async (path: string, body: unknown) => {
      const r = await send(agent, { url: `${base}/v1/${path}`, method: 'POST', headers, body: JSON.stringify(body) });
      if (r.status >= 300) throw new Error(`${path}: HTTP ${r.status} ${r.body}`);
    };
    await setup('sys/mounts/secret', { type: 'kv', options: { version: '2' } });
    await setup('secret/data/bench/read', { data: { username: 'app', password: 'x'.repeat(32) } });
    const cases: Array<[string, LoadTarget]> = [
      // The floor on the same machine and moment: the Vault request path (token, Cedar, audit) around a handler that reads no secret.
      ['vault-baseline', { url: `${base}/v1/auth/token/lookup-self`, method: 'GET', headers: { 'x-vault-token': headers['x-vault-token'] } }],
      ['kv-read', { url: `${base}/v1/secret/data/bench/read`, method: 'GET', headers: { 'x-vault-token': headers['x-vault-token'] } }],
      ['kv-write', { url: `${base}/v1/secret/data/bench/write`, method: 'POST', headers, body: JSON.stringify({ data: { username: 'app', password: 'y'.repeat(32) } }) }],
    ];
    const only = process.env.BENCH_SECRETS_CASES?.split(',').map((c) => c.trim()).filter(Boolean);
    const figures: Record<string, { rate: number; p99: number }> = {};
    for (const [name, target] of cases) {
      if (only && !only.includes(name)) continue;
      await runLoad(agent, target, { concurrency, durationMs: 500 });
      const r = await runLoad(agent, target, { concurrency, durationMs: seconds * 1000 });
      if (r.firstError) note(`${name}: first error: ${r.firstError}`);
      const rate = (r.ok / r.elapsedMs) * 1000;
      const p99 = r.latencyMs(0.99);
      figures[name] = { rate, p99 };
      emit({ case: name, metric: 'throughput', value: round(rate, 1), unit: 'req/s' });
      emit({ case: name, metric: 'p50', value: round(r.latencyMs(0.5), 3), unit: 'ms' });
      emit({ case: name, metric: 'p99', value: round(p99, 3), unit: 'ms' });
      emit({ case: name, metric: 'errors', value: r.errors, unit: 'count' });
      emit({ case: name, metric: 'cpu', value: round(r.cpuMs / r.elapsedMs, 2), unit: 'cores' });
      // CPU per request (server, client and SQLite threads): the figure that survives a busy machine best.
      emit({ case: name, metric: 'cpu_per_req', value: round(r.cpuMs / Math.max(1, r.requests), 3), unit: 'ms' });
      // The main thread alone: the server's event loop (plus the client in inline mode).
      if (r.mainThreadCpuMs !== undefined) emit({ case: name, metric: 'main_thread_cpu_per_req', value: round(r.mainThreadCpuMs / Math.max(1, r.requests), 3), unit: 'ms' });
      if (r.clientCpuMs !== undefined) emit({ case: name, metric: 'client_cpu_per_req', value: round(r.clientCpuMs / Math.max(1, r.requests), 3), unit: 'ms' });
      emit({ case: name, metric: 'main_thread_elu', value: round(r.eventLoopUtilization, 2), unit: 'fraction' });
    }
    const baseline = figures['vault-baseline'];
    const read = figures['kv-read'];
    const write = figures['kv-write'];
    if (baseline && read) emit({ case: 'kv-read', metric: 'ratio_baseline_over_read', value: round(baseline.rate / read.rate, 2), unit: 'x' });
    if (read) {
      emit({ case: 'kv-read', metric: 'goal_ratio', value: round(read.rate / GOALS.reads_per_s, 2), unit: `x of ${GOALS.reads_per_s} req/s` });
      emit({ case: 'kv-read', metric: 'p99_goal_ratio', value: round(read.p99 / GOALS.read_p99_ms, 2), unit: `x of ${GOALS.read_p99_ms} ms (lower is better)` });
    }
    if (write) emit({ case: 'kv-write', metric: 'goal_ratio', value: round(write.rate / GOALS.writes_per_s, 2), unit: `x of ${GOALS.writes_per_s} req/s` });
  } finally {
    agent.destroy();
    await app.close();
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  note(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
