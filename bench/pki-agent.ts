import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newKeyAndCsr } from '../src/agent/csr.js';
import { resolveServerConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { startRuntime } from '../src/runtime.js';
import { buildApp } from '../src/server/app.js';
import { emitter, note, positiveNumber, round } from './report.js';

/**
 * Node attestation and agent issuance through the whole request path in-process (`app.inject`:
 * authentication, Cedar, the handler, and the audit event in the same transaction), on SQLite:
 * join-token attestations per second, and workload SVIDs per second through
 * `POST /v1/pki/agent/svids` in batches. See bench/README.md.
 *
 *   npx tsx bench/pki-agent.ts
 *   BENCH_ATTESTS=200 BENCH_BATCHES=10 BENCH_BATCH_SIZE=100 npx tsx bench/pki-agent.ts
 */
const emit = emitter('pki-agent');
const attests = Math.round(positiveNumber('BENCH_ATTESTS', 300));
const batches = Math.round(positiveNumber('BENCH_BATCHES', 10));
const batchSize = Math.min(100, Math.round(positiveNumber('BENCH_BATCH_SIZE', 100)));
const concurrency = Math.round(positiveNumber('BENCH_CONCURRENCY', 8));

const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-agent-'));
const runtime = await startRuntime(resolveServerConfig({ dataDir, logLevel: 'silent' }, {}), { logger: createLogger({ level: 'silent' }) });
const app = await buildApp(runtime);
await app.ready();
const admin = { authorization: `Bearer ${readFileSync(runtime.files.adminToken, 'utf8').trim()}` };

async function inParallel<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        const t = performance.now();
        await work(item);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;

try {
  note(`preparing ${attests} join tokens and CSRs, ${batches} batches of ${batchSize}…`);
  const tokens: string[] = [];
  for (let i = 0; i < attests; i++) tokens.push(((await app.inject({ method: 'POST', url: '/v1/pki/agent/tokens', headers: admin, payload: {} })).json() as { token: string }).token);
  const csrs = await Promise.all(Array.from({ length: Math.max(attests, batchSize) }, () => newKeyAndCsr().then((k) => k.csrPem)));

  const attestStart = performance.now();
  const attestLatency = await inParallel(tokens, async (token) => {
    const r = await app.inject({ method: 'POST', url: '/v1/pki/agent/attest', payload: { join_token: token, csr: csrs[0]! } });
    if (r.statusCode !== 200) throw new Error(`attest answered ${r.statusCode}: ${r.body}`);
  });
  const attestSeconds = (performance.now() - attestStart) / 1000;
  emit({ metric: 'attest_join_token_per_second', value: round(attests / attestSeconds, 1), unit: 'req/s', concurrency });
  emit({ metric: 'attest_join_token_p50', value: round(pct(attestLatency, 50), 2), unit: 'ms' });
  emit({ metric: 'attest_join_token_p99', value: round(pct(attestLatency, 99), 2), unit: 'ms' });

  const parent = 'spiffe://default.rampart.local/rampart/agent/bench';
  const entries: string[] = [];
  for (let i = 0; i < batchSize; i++) {
    const r = await app.inject({ method: 'POST', url: '/v1/pki/registrations', headers: admin, payload: { spiffe_id: `spiffe://default.rampart.local/ns/bench/sa/w${i}`, parent, selectors: [`unix:uid:${1000 + i}`] } });
    entries.push((r.json() as { id: string }).id);
  }
  const body = { requests: entries.map((id, i) => ({ registration_id: id, csr: csrs[i]! })) };
  const svidStart = performance.now();
  const batchLatency = await inParallel(Array.from({ length: batches }, (_, i) => i), async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/pki/agent/svids', headers: admin, payload: body });
    if (r.statusCode !== 200) throw new Error(`svids answered ${r.statusCode}: ${r.body}`);
  });
  const svidSeconds = (performance.now() - svidStart) / 1000;
  emit({ metric: 'agent_svids_per_second', value: round((batches * batchSize) / svidSeconds, 1), unit: 'svid/s', batch_size: batchSize, concurrency });
  emit({ metric: 'agent_svids_batch_p50', value: round(pct(batchLatency, 50), 1), unit: 'ms', batch_size: batchSize });
} finally {
  await app.close();
  await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
}
