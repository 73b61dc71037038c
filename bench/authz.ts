import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CedarWasmEvaluator } from '../src/authz/cedar-wasm-evaluator.js';
import { type CheckRequest, DecisionService } from '../src/authz/decisions.js';
import type { EntityJson, EvaluationRequest } from '../src/authz/evaluator.js';
import { policyHash } from '../src/authz/seed-policies.js';
import type { PolicyVersionRecord } from '../src/authz/store.js';
import { resolveServerConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { startRuntime } from '../src/runtime.js';
import { keepAliveAgent, percentile, runLoad } from './load.js';
import { emitter, note, positiveNumber, round } from './report.js';
import { listenHttps } from './listening.js';

/**
 * The authorization benchmark, for 10, 1,000 and 10,000 policies of two shapes (RBAC, ABAC):
 * - cedar-wasm's own figures, the reference: `statefulIsAuthorized` on a preparsed set
 *   (CedarWasmEvaluator, path `prepared`) and the stateless `isAuthorized`, which parses the
 *   policy text on every call (path `stateless`);
 * - the decision service (src/authz/decisions.ts) in-process, decision cache cold (`decisions-cold`:
 *   cache off, every decision evaluated) and warm (`decisions-warm`: the same 256 requests again),
 *   with the ratios to cedar-wasm's prepared path;
 * - cache invalidation after an activation: `invalidate()` itself, and the first decision after it
 *   (reload and prepare of the new version);
 * - over HTTPS (`https`): the real server, `POST /v1/authz/stores/bench/check` (one decision per
 *   request, audited) and `…/batch` (100 per request), through bench/load.ts.
 * One JSON line per figure on stdout; notes on stderr. See bench/README.md.
 *
 *   npx tsx bench/authz.ts
 *   BENCH_SECONDS=1 BENCH_POLICIES=10,1000 BENCH_HTTPS=0 npx tsx bench/authz.ts
 */

const BENCH = 'authz';
const seconds = positiveNumber('BENCH_SECONDS', 2);
const sizes = (process.env.BENCH_POLICIES ?? '10,1000,10000').split(',').map(Number);
const https = process.env.BENCH_HTTPS !== '0';
const concurrency = positiveNumber('BENCH_CONCURRENCY', 16);
/** Goals of issue 5: warm-cache p99 in-process, and decisions per second over HTTPS. */
const GOAL_WARM_P99_US = 20;
const GOAL_HTTPS_DECISIONS = 5000;
/** Each case runs at least this many decisions, however slow, so p99 means something. */
const MIN_DECISIONS = 20;

const emit = emitter(BENCH);

type Shape = 'rbac' | 'abac';

/** Policy i lets role ri perform action ai; ABAC adds an ownership and a time-of-day condition. */
function policyText(shape: Shape, n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const scope = `permit(principal in Role::"r${i}", action == Action::"a${i}", resource)`;
    lines.push(shape === 'rbac' ? `${scope};` : `${scope} when { resource.owner == principal.id && context.hour < 18 };`);
  }
  return lines.join('\n');
}

/**
 * 256 requests cycled through: a user in one random role asking for a random action on a document,
 * so about 1 in n requests (n policies) is allowed; for ABAC the owner and hour also vary.
 */
function requestsFor(shape: Shape, n: number): EvaluationRequest[] {
  let seed = 42;
  const random = (below: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % below;
  };
  return Array.from({ length: 256 }, (_, k) => {
    const r = random(n);
    const a = k % 2 === 0 ? r : random(n);
    const entities: EntityJson[] = [
      { uid: { type: 'User', id: `u${k}` }, attrs: { id: `u${k}` }, parents: [{ type: 'Role', id: `r${r}` }] },
      { uid: { type: 'Role', id: `r${r}` }, attrs: {}, parents: [] },
      { uid: { type: 'Doc', id: `d${k}` }, attrs: { owner: random(4) === 0 ? `u${k}` : 'someone' }, parents: [] },
    ];
    const request: EvaluationRequest = {
      principal: { type: 'User', id: `u${k}` },
      action: { type: 'Action', id: `a${a}` },
      resource: { type: 'Doc', id: `d${k}` },
      context: shape === 'abac' ? { hour: random(24) } : {},
      entities,
    };
    return request;
  });
}

interface Measured {
  decisions: number;
  allows: number;
  throughput: number;
  p50Us: number;
  p99Us: number;
}

function measure(requests: readonly EvaluationRequest[], decide: (r: EvaluationRequest) => boolean): Measured {
  // Warm-up (JIT; for the stateful path, the preparsed set's first use): 50 decisions or 0.5 s.
  const warmEnd = process.hrtime.bigint() + 500_000_000n;
  for (let i = 0; i < 50 && process.hrtime.bigint() < warmEnd; i++) decide(requests[i]!);
  const latencies: number[] = [];
  let allows = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  for (let i = 0; ; i++) {
    const t0 = process.hrtime.bigint();
    if (decide(requests[i % requests.length]!)) allows++;
    const t1 = process.hrtime.bigint();
    latencies.push(Number(t1 - t0) / 1e3);
    if (t1 >= deadline && latencies.length >= MIN_DECISIONS) break;
  }
  const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = Float64Array.from(latencies).sort();
  return {
    decisions: latencies.length,
    allows,
    throughput: latencies.length / elapsedS,
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
  };
}

/** As {@link measure}, for a decision that is awaited (the decision service's API is async). */
async function measureAsync(requests: readonly CheckRequest[], decide: (r: CheckRequest) => Promise<boolean>): Promise<Measured> {
  for (let i = 0; i < Math.min(50, requests.length); i++) await decide(requests[i]!);
  const latencies: number[] = [];
  let allows = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  for (let i = 0; ; i++) {
    const t0 = process.hrtime.bigint();
    if (await decide(requests[i % requests.length]!)) allows++;
    const t1 = process.hrtime.bigint();
    latencies.push(Number(t1 - t0) / 1e3);
    if (t1 >= deadline && latencies.length >= MIN_DECISIONS) break;
  }
  const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = Float64Array.from(latencies).sort();
  return { decisions: latencies.length, allows, throughput: latencies.length / elapsedS, p50Us: percentile(sorted, 0.5), p99Us: percentile(sorted, 0.99) };
}

function report(tag: Record<string, unknown>, m: Measured): void {
  emit({ ...tag, metric: 'throughput', value: round(m.throughput, 1), unit: 'decisions/s' });
  emit({ ...tag, metric: 'p50', value: round(m.p50Us, 1), unit: 'us' });
  emit({ ...tag, metric: 'p99', value: round(m.p99Us, 1), unit: 'us' });
  emit({ ...tag, metric: 'decisions', value: m.decisions, unit: 'count' });
  emit({ ...tag, metric: 'allowed', value: m.allows, unit: 'count' });
}

const record = (tenant: string, store: string, version: number, policies: Record<string, string>): PolicyVersionRecord => ({
  tenant,
  store,
  version,
  hash: policyHash(policies, null),
  policies,
  schema: null,
  status: 'active',
  author: 'bench',
  message: '',
  createdAt: new Date(0).toISOString(),
});

/** cedar-wasm's prepared and stateless paths: the reference figures. Returns the prepared path's. */
function cedarWasmReference(evaluator: CedarWasmEvaluator, shape: Shape, n: number, text: string, requests: readonly EvaluationRequest[]): Measured {
  const tag = { shape, policies: n };
  const t0 = process.hrtime.bigint();
  const prepared = evaluator.prepare({ policies: text });
  emit({ ...tag, path: 'prepared', metric: 'prepare', value: round(Number(process.hrtime.bigint() - t0) / 1e6, 2), unit: 'ms' });
  const stateful = measure(requests, (r) => evaluator.isAuthorized(prepared, r).decision === 'allow');
  report({ ...tag, path: 'prepared' }, stateful);

  const policies = { staticPolicies: text };
  const statelessDecide = (r: EvaluationRequest): boolean => {
    const answer = cedar.isAuthorized({
      principal: r.principal,
      action: r.action,
      resource: r.resource,
      context: r.context as cedar.Context,
      entities: r.entities as unknown as cedar.Entities,
      policies,
    });
    if (answer.type === 'failure') throw new Error(answer.errors.map((e) => e.message).join('; '));
    return answer.response.decision === 'allow';
  };
  // Both paths must decide alike before their speed is compared.
  const checked = requests.slice(0, n >= 10_000 ? 16 : requests.length);
  const disagreements = checked.filter((r) => statelessDecide(r) !== (evaluator.isAuthorized(prepared, r).decision === 'allow')).length;
  if (disagreements > 0) throw new Error(`${shape}/${n}: the two paths disagree on ${disagreements} of ${checked.length} requests`);
  const stateless = measure(requests, statelessDecide);
  report({ ...tag, path: 'stateless' }, stateless);
  emit({ ...tag, metric: 'ratio_throughput_prepared_over_stateless', value: round(stateful.throughput / stateless.throughput, 2), unit: 'x' });
  note(
    `${shape.padEnd(4)} ${String(n).padStart(6)} policies: cedar-wasm prepared ${round(stateful.throughput, 0)} decisions/s (p50 ${round(stateful.p50Us, 1)} µs, p99 ${round(stateful.p99Us, 1)} µs); ` +
      `stateless ${round(stateless.throughput, 1)} decisions/s (p50 ${round(stateless.p50Us, 1)} µs); ratio ${round(stateful.throughput / stateless.throughput, 1)}x`,
  );
  return stateful;
}

/** The decision service in-process, cache cold and warm, and invalidation after an activation. */
async function decisionService(evaluator: CedarWasmEvaluator, shape: Shape, n: number, text: string, requests: readonly CheckRequest[], reference: Measured): Promise<Measured> {
  const tag = { shape, policies: n };
  const active = { current: record('bench', 'app', 1, { 'bench.cedar': text }) };
  const ports = {
    policies: { active: async () => active.current },
    entities: { entities: async () => ({ revision: 0, entities: [] }) },
    evaluator,
  };
  const cold = new DecisionService({ ...ports, cacheSize: 0 });
  const warm = new DecisionService(ports);
  // The decision service must decide as cedar-wasm does before its speed is compared.
  const prepared = evaluator.prepare({ policies: { 'bench.cedar': text } });
  for (const r of requests.slice(0, 32)) {
    const direct = evaluator.isAuthorized(prepared, { ...r, context: r.context ?? {}, entities: r.entities ?? [] }).decision;
    if ((await cold.check('bench', 'app', r)).decision !== direct) throw new Error(`${shape}/${n}: the decision service disagrees with cedar-wasm`);
  }
  const coldM = await measureAsync(requests, async (r) => (await cold.check('bench', 'app', r)).decision === 'allow');
  report({ ...tag, path: 'decisions-cold' }, coldM);
  for (const r of requests) await warm.check('bench', 'app', r);
  const warmM = await measureAsync(requests, async (r) => (await warm.check('bench', 'app', r)).decision === 'allow');
  report({ ...tag, path: 'decisions-warm' }, warmM);
  emit({ ...tag, metric: 'ratio_throughput_cold_over_cedar_wasm', value: round(coldM.throughput / reference.throughput, 2), unit: 'x' });
  emit({ ...tag, metric: 'ratio_throughput_warm_over_cedar_wasm', value: round(warmM.throughput / reference.throughput, 2), unit: 'x' });
  emit({ ...tag, path: 'decisions-warm', metric: 'goal_met', value: warmM.p99Us <= GOAL_WARM_P99_US, goal: `warm-cache p99 <= ${GOAL_WARM_P99_US} us` });

  // Invalidation: the synchronous drop, then the first decision under the new version (load + prepare).
  active.current = record('bench', 'app', 2, { 'bench.cedar': `${text}\n` });
  const t0 = process.hrtime.bigint();
  warm.invalidate('bench');
  const t1 = process.hrtime.bigint();
  const first = await warm.check('bench', 'app', requests[0]!);
  const t2 = process.hrtime.bigint();
  if (first.policyVersion !== 2) throw new Error('a decision after invalidation was made by the old version');
  emit({ ...tag, metric: 'invalidate', value: round(Number(t1 - t0) / 1e3, 1), unit: 'us' });
  emit({ ...tag, metric: 'first_decision_after_activation', value: round(Number(t2 - t1) / 1e6, 2), unit: 'ms' });
  note(
    `${shape.padEnd(4)} ${String(n).padStart(6)} policies: decisions cold ${round(coldM.throughput, 0)}/s (p99 ${round(coldM.p99Us, 1)} µs), ` +
      `warm ${round(warmM.throughput, 0)}/s (p50 ${round(warmM.p50Us, 1)} µs, p99 ${round(warmM.p99Us, 1)} µs); ` +
      `invalidate ${round(Number(t1 - t0) / 1e3, 1)} µs, first decision after ${round(Number(t2 - t1) / 1e6, 1)} ms`,
  );
  return warmM;
}

/** The real server over HTTPS: single checks and batches of 100 against store `bench`. */
async function overHttps(cases: readonly { shape: Shape; n: number; text: string; requests: readonly CheckRequest[] }[]): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-authz-'));
  const config = resolveServerConfig({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent' }, {});
  const runtime = await startRuntime(config, { logger: createLogger({ level: 'silent' }) });
  const { app, base } = await listenHttps(runtime);
  const agent = keepAliveAgent({ concurrency, ca: runtime.trustBundlePem });
  try {
    const headers = { authorization: `Bearer ${readFileSync(runtime.files.adminToken, 'utf8').trim()}`, 'content-type': 'application/json' };
    let version = 0;
    for (const c of cases) {
      // Activated as the policy lifecycle does: committed, then the authorizer invalidated.
      await runtime.stores.policies.insert(record('default', 'bench', ++version, { 'bench.cedar': c.text }));
      runtime.authorizer.invalidate('default');
      const tag = { shape: c.shape, policies: c.n, path: 'https' };
      const targets = [
        { kind: 'check', perRequest: 1, url: `${base}/v1/authz/stores/bench/check`, body: JSON.stringify(c.requests[0]) },
        { kind: 'batch', perRequest: 100, url: `${base}/v1/authz/stores/bench/batch`, body: JSON.stringify({ requests: c.requests.slice(0, 100) }) },
      ];
      for (const t of targets) {
        const target = { url: t.url, method: 'POST' as const, headers, body: t.body };
        await runLoad(agent, target, { concurrency, durationMs: 500 });
        const result = await runLoad(agent, target, { concurrency, durationMs: seconds * 1000 });
        const { ok } = result;
        const decisions = ((ok * t.perRequest) / result.elapsedMs) * 1000;
        const caseTag = { ...tag, request: t.kind };
        emit({ ...caseTag, metric: 'throughput', value: round(decisions, 1), unit: 'decisions/s' });
        emit({ ...caseTag, metric: 'requests', value: round((ok / result.elapsedMs) * 1000, 1), unit: 'req/s' });
        emit({ ...caseTag, metric: 'p50', value: round(result.latencyMs(0.5), 3), unit: 'ms' });
        emit({ ...caseTag, metric: 'p99', value: round(result.latencyMs(0.99), 3), unit: 'ms' });
        emit({ ...caseTag, metric: 'errors', value: result.errors, unit: 'count' });
        emit({ ...caseTag, metric: 'goal_met', value: result.errors === 0 && decisions >= GOAL_HTTPS_DECISIONS, goal: `>= ${GOAL_HTTPS_DECISIONS} decisions/s over HTTPS` });
        if (result.errors > 0) note(`  https ${t.kind}: ${result.errors} errors (first: ${result.firstError})`);
        note(`${c.shape.padEnd(4)} ${String(c.n).padStart(6)} policies: HTTPS ${t.kind} ${round(decisions, 0)} decisions/s (${round((ok / result.elapsedMs) * 1000, 0)} req/s, p50 ${round(result.latencyMs(0.5), 2)} ms, p99 ${round(result.latencyMs(0.99), 2)} ms)`);
      }
    }
  } finally {
    agent.destroy();
    await app.close();
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  emit({ metric: 'env', value: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model, cedar: cedar.getCedarVersion(), seconds, sizes, https, concurrency } });
  note(`authz bench: node ${process.version}, cedar ${cedar.getCedarVersion()}, ${seconds} s per case, policies ${sizes.join(', ')}`);
  const evaluator = new CedarWasmEvaluator();
  // Process warm-up, not reported: Wasm instantiation and the JIT would otherwise land on the first case.
  const warm = evaluator.prepare({ policies: policyText('abac', 10) });
  const warmRequests = requestsFor('abac', 10);
  const warmEnd = process.hrtime.bigint() + 1_000_000_000n;
  for (let i = 0; process.hrtime.bigint() < warmEnd; i++) evaluator.isAuthorized(warm, warmRequests[i % warmRequests.length]!);
  const cases: { shape: Shape; n: number; text: string; requests: readonly CheckRequest[] }[] = [];
  for (const shape of ['rbac', 'abac'] as const) {
    for (const n of sizes) {
      const text = policyText(shape, n);
      const requests = requestsFor(shape, n);
      const reference = cedarWasmReference(evaluator, shape, n, text, requests);
      await decisionService(evaluator, shape, n, text, requests, reference);
      cases.push({ shape, n, text, requests });
    }
  }
  if (https) await overHttps(cases);
}

await main();
