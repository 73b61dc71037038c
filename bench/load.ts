import { request as httpsRequest, Agent } from 'node:https';
import { performance } from 'node:perf_hooks';

/**
 * A small closed-loop HTTPS load generator for the benchmarks: `concurrency` workers, each with
 * one request in flight at a time on its own keep-alive connection, for a fixed duration.
 *
 * It runs in the process that also hosts the servers under test, so it shares their CPU and
 * (by default) their event loop; bench/README.md says how to read the figures. It only ever
 * targets loopback addresses, and it stops by itself: no request is started after the deadline
 * and each request is abandoned after `requestTimeoutMs`.
 */

export interface LoadTarget {
  /** Must be an https URL on a loopback address. */
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface LoadOptions {
  readonly concurrency: number;
  readonly durationMs: number;
  readonly requestTimeoutMs?: number;
}

export interface LoadResult {
  /** Requests that completed (any status) or failed, in the measured window. */
  readonly requests: number;
  /** Non-2xx answers plus transport failures. */
  readonly errors: number;
  /** How many answers of each status (`"error"` for transport failures). */
  readonly statuses: Readonly<Record<string, number>>;
  /** The first failure seen, for the report. */
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
  /** Per-request latency in milliseconds, successful requests only, sorted ascending. */
  readonly latenciesMs: Float64Array;
  /** Process CPU time (all threads: servers, client, SQLite) over the window, milliseconds. */
  readonly cpuMs: number;
  /** Event-loop utilization of the main thread over the window, 0..1. */
  readonly eventLoopUtilization: number;
}

export function keepAliveAgent(options: { concurrency: number; ca: string }): Agent {
  return new Agent({
    keepAlive: true,
    maxSockets: options.concurrency,
    maxFreeSockets: options.concurrency,
    scheduling: 'lifo',
    ca: options.ca,
    minVersion: 'TLSv1.3',
  });
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function assertLoopback(url: URL): void {
  if (url.protocol !== 'https:') throw new Error(`load target must be https: ${url.href}`);
  if (!LOOPBACK.has(url.hostname) && !/^127\.\d+\.\d+\.\d+$/.test(url.hostname)) {
    throw new Error(`load target must be a loopback address, not ${url.hostname}`);
  }
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** One request on the agent; resolves with the status and body, rejects on transport failure. */
export function send(agent: Agent, target: LoadTarget, timeoutMs = 10_000): Promise<Answer> {
  const url = new URL(target.url);
  assertLoopback(url);
  const body = target.body === undefined ? undefined : Buffer.from(target.body);
  const headers: Record<string, string> = { ...target.headers };
  if (body) headers['content-length'] = String(body.length);
  return new Promise<Answer>((resolve, reject) => {
    const req = httpsRequest(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: target.method, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Runs the closed loop for `durationMs` and returns what it measured. Requests already in flight
 * at the deadline are allowed to finish and are counted; the elapsed time includes them.
 */
export async function runLoad(agent: Agent, target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  assertLoopback(new URL(target.url));
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  let latencies = new Float64Array(1 << 16);
  let ok = 0;
  let requests = 0;
  let errors = 0;
  let firstError: string | undefined;
  const statuses: Record<string, number> = {};

  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(options.durationMs * 1e6));
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();

  const worker = async (): Promise<void> => {
    while (process.hrtime.bigint() < deadline) {
      const t0 = process.hrtime.bigint();
      let status: number | 'error';
      let failure: string | undefined;
      try {
        const answer = await send(agent, target, timeoutMs);
        status = answer.status;
        if (status < 200 || status > 299) failure = `HTTP ${status}: ${answer.body.slice(0, 300)}`;
      } catch (err) {
        status = 'error';
        failure = (err as Error).message;
      }
      const t1 = process.hrtime.bigint();
      requests++;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (failure !== undefined) {
        errors++;
        firstError ??= failure;
        continue;
      }
      if (ok === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[ok++] = Number(t1 - t0) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));

  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const sorted = latencies.slice(0, ok).sort();
  return {
    requests,
    errors,
    statuses,
    firstError,
    elapsedMs,
    latenciesMs: sorted,
    cpuMs: (cpu.user + cpu.system) / 1000,
    eventLoopUtilization: elu.utilization,
  };
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}
