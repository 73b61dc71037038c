import { cpus } from 'node:os';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CedarWasmEvaluator } from '../src/authz/cedar-wasm-evaluator.js';
import type { EntityJson, EvaluationRequest } from '../src/authz/evaluator.js';
import { percentile } from './load.js';
import { emitter, note, positiveNumber, round } from './report.js';

/**
 * The application-policy evaluator benchmark: decisions per second and per-decision latency of
 * `PolicyEvaluator.isAuthorized` (CedarWasmEvaluator: preparsed set, `statefulIsAuthorized`)
 * against cedar-wasm's stateless `isAuthorized`, which parses the policy text on every call, for
 * 10, 1,000 and 10,000 policies of two shapes. In-process, one decision at a time. One JSON line
 * per figure on stdout; notes on stderr. See bench/README.md.
 *
 *   npx tsx bench/authz.ts
 *   BENCH_SECONDS=1 BENCH_POLICIES=10,1000 npx tsx bench/authz.ts
 */

const BENCH = 'authz';
const seconds = positiveNumber('BENCH_SECONDS', 2);
const sizes = (process.env.BENCH_POLICIES ?? '10,1000,10000').split(',').map(Number);
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

function report(tag: Record<string, unknown>, m: Measured): void {
  emit({ ...tag, metric: 'throughput', value: round(m.throughput, 1), unit: 'decisions/s' });
  emit({ ...tag, metric: 'p50', value: round(m.p50Us, 1), unit: 'us' });
  emit({ ...tag, metric: 'p99', value: round(m.p99Us, 1), unit: 'us' });
  emit({ ...tag, metric: 'decisions', value: m.decisions, unit: 'count' });
  emit({ ...tag, metric: 'allowed', value: m.allows, unit: 'count' });
}

function main(): void {
  emit({ metric: 'env', value: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model, cedar: cedar.getCedarVersion(), seconds, sizes } });
  note(`authz bench: node ${process.version}, cedar ${cedar.getCedarVersion()}, ${seconds} s per case, policies ${sizes.join(', ')}`);
  const evaluator = new CedarWasmEvaluator();
  // Process warm-up, not reported: Wasm instantiation and the JIT would otherwise land on the first case.
  const warm = evaluator.prepare({ policies: policyText('abac', 10) });
  const warmRequests = requestsFor('abac', 10);
  const warmEnd = process.hrtime.bigint() + 1_000_000_000n;
  for (let i = 0; process.hrtime.bigint() < warmEnd; i++) evaluator.isAuthorized(warm, warmRequests[i % warmRequests.length]!);
  for (const shape of ['rbac', 'abac'] as const) {
    for (const n of sizes) {
      const text = policyText(shape, n);
      const requests = requestsFor(shape, n);
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
        `${shape.padEnd(4)} ${String(n).padStart(6)} policies: prepared ${round(stateful.throughput, 0)} decisions/s (p50 ${round(stateful.p50Us, 1)} µs, p99 ${round(stateful.p99Us, 1)} µs); ` +
          `stateless ${round(stateless.throughput, 1)} decisions/s (p50 ${round(stateless.p50Us, 1)} µs); ratio ${round(stateful.throughput / stateless.throughput, 1)}x`,
      );
    }
  }
}

main();
