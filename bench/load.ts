import { readFileSync } from 'node:fs';
import { request as httpsRequest, Agent, type AgentOptions } from 'node:https';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runWrk } from './wrk.js';

/**
 * A small closed-loop HTTPS load generator for the benchmarks: `concurrency` workers, each with
 * one request in flight at a time on its own keep-alive connection, for a fixed duration.
 *
 * By default the loop runs in a `worker_threads` worker, so the server under test keeps its event
 * loop to itself, as it would in a deployment; the two threads still share the machine's cores.
 * `BENCH_CLIENT=inline` runs it on the main thread instead (the mode of the figures recorded
 * before the worker existed: client and server then take turns on one event loop), and
 * `BENCH_CLIENT=wrk` hands the load to wrk in a child process (./wrk.ts), a client cheap enough
 * that a bare route measures the server rather than the client. It only ever
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

/**
 * Where the load generator runs: its own thread (`worker`), the servers' event loop (`inline`),
 * or wrk in a child process (`wrk`, ./wrk.ts).
 */
export type LoadMode = 'worker' | 'inline' | 'wrk';

/**
 * Latency in milliseconds at quantile q in [0, 1]; NaN when none: of the successful requests with
 * node:https, of every answer with wrk (whose histogram does not tell statuses apart).
 */
export type Quantile = (q: number) => number;

/** The nearest-rank quantiles of an ascending array of latencies. */
export function quantilesOf(sorted: Float64Array): Quantile {
  return (q) => percentile(sorted, q);
}

export interface LoadResult {
  readonly mode: LoadMode;
  /** Requests that completed (any status) or failed, in the measured window. */
  readonly requests: number;
  /** Non-2xx answers plus transport failures. */
  readonly errors: number;
  /** How many answers of each status (`"error"` for transport failures). */
  readonly statuses: Readonly<Record<string, number>>;
  /** The first failure seen, for the report. */
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
  /** Requests answered 2xx (with wrk: below 400, and in time). */
  readonly ok: number;
  readonly latencyMs: Quantile;
  /**
   * Process CPU time over the window, milliseconds: all threads (servers, SQLite, and the client
   * unless it is wrk, a process of its own).
   */
  readonly cpuMs: number;
  /**
   * CPU time of the main thread over the window, milliseconds: the servers' event loop (and, in
   * `inline` mode, the client too). Undefined where the OS does not report per-thread CPU time
   * (read from /proc/thread-self/stat on Linux, 10 ms resolution).
   */
  readonly mainThreadCpuMs: number | undefined;
  /** CPU time of the load generator's thread (`worker` mode on Linux only), milliseconds. */
  readonly clientCpuMs: number | undefined;
  /** Event-loop utilization of the main thread over the window, 0..1. */
  readonly eventLoopUtilization: number;
}

/** `BENCH_CLIENT`: `worker` (default), `inline` or `wrk`. */
export function loadMode(): LoadMode {
  const raw = process.env.BENCH_CLIENT ?? '';
  if (raw === '' || raw === 'worker') return 'worker';
  if (raw === 'inline' || raw === 'wrk') return raw;
  throw new Error(`BENCH_CLIENT must be "worker", "inline" or "wrk" (got "${raw}")`);
}

/** The `client` field of a bench's `env` line. */
export function clientDescription(mode: LoadMode = loadMode()): string {
  if (mode === 'wrk') return 'wrk, one thread, in a child process (BENCH_CLIENT=wrk): the servers own the main event loop and the client costs them nothing';
  return mode === 'worker'
    ? 'node:https keep-alive Agent in a worker_threads worker (BENCH_CLIENT=worker): the servers own the main event loop'
    : 'node:https keep-alive Agent on the main thread (BENCH_CLIENT=inline): same event loop as the servers';
}

const agentOptions = (options: { concurrency: number; ca: string }): AgentOptions => ({
  keepAlive: true,
  maxSockets: options.concurrency,
  maxFreeSockets: options.concurrency,
  scheduling: 'lifo',
  ca: options.ca,
  minVersion: 'TLSv1.3',
});

/**
 * The agent a bench sends its setup requests with. In `worker` mode it also owns the load
 * thread, which has an agent of its own with the same settings (an Agent cannot cross threads);
 * `destroy()` ends both, and the thread never keeps the process alive by itself.
 */
class LoadAgent extends Agent {
  #thread: LoadThread | undefined;

  constructor(readonly settings: { readonly concurrency: number; readonly ca: string }) {
    super(agentOptions(settings));
  }

  thread(): LoadThread {
    this.#thread ??= new LoadThread(this.settings);
    return this.#thread;
  }

  override destroy(): void {
    this.#thread?.terminate();
    this.#thread = undefined;
    super.destroy();
  }
}

export function keepAliveAgent(options: { concurrency: number; ca: string }): Agent {
  return new LoadAgent(options);
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

/** What the closed loop itself measures, wherever it runs. */
interface LoopResult {
  readonly requests: number;
  readonly errors: number;
  readonly statuses: Record<string, number>;
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
  readonly latenciesMs: Float64Array;
  readonly threadCpuMs: number | undefined;
}

/**
 * CPU time (user + system) of the calling thread in milliseconds, from Linux's
 * /proc/thread-self/stat (fields 14 and 15, in clock ticks of 10 ms); undefined elsewhere.
 * Node 20 has no per-thread `cpuUsage`, and `process.cpuUsage()` sums every thread.
 */
function threadCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    // The command name (field 2) is parenthesized and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

async function closedLoop(agent: Agent, target: LoadTarget, options: LoadOptions): Promise<LoopResult> {
  assertLoopback(new URL(target.url));
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  let latencies = new Float64Array(1 << 16);
  let ok = 0;
  let requests = 0;
  let errors = 0;
  let firstError: string | undefined;
  const statuses: Record<string, number> = {};

  const cpu0 = threadCpuMs();
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(options.durationMs * 1e6));

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
  const cpu1 = threadCpuMs();
  return {
    requests,
    errors,
    statuses,
    firstError,
    elapsedMs,
    latenciesMs: latencies.slice(0, ok).sort(),
    threadCpuMs: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0,
  };
}

const WORKER_KIND = 'rampart-bench-load';

interface LoadRequest {
  readonly id: number;
  readonly target: LoadTarget;
  readonly options: LoadOptions;
}

type LoadReply = { readonly id: number; readonly result: LoopResult } | { readonly id: number; readonly error: string };

/**
 * The load generator's thread. The benches run under tsx, whose loader a worker does not
 * inherit on Node 20, so the worker registers it before importing this module again.
 */
class LoadThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: LoopResult) => void; reject: (e: Error) => void }>();
  #next = 0;

  constructor(settings: { readonly concurrency: number; readonly ca: string }) {
    const self = JSON.stringify(import.meta.url);
    let boot = `import(${self});`;
    try {
      boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${self}); });`;
    } catch {
      // Not under tsx (compiled JavaScript): the module loads as it is.
    }
    this.#worker = new Worker(boot, { eval: true, workerData: { kind: WORKER_KIND, settings } });
    this.#worker.unref();
    this.#worker.on('message', (reply: LoadReply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if ('error' in reply) pending?.reject(new Error(`load worker: ${reply.error}`));
      else pending?.resolve(reply.result);
    });
    this.#worker.on('error', (err) => this.#failAll(err));
    this.#worker.on('exit', (code) => this.#failAll(new Error(`load worker exited with code ${code}`)));
  }

  run(target: LoadTarget, options: LoadOptions): Promise<LoopResult> {
    const id = this.#next++;
    return new Promise<LoopResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, target, options } satisfies LoadRequest);
    });
  }

  terminate(): void {
    void this.#worker.terminate();
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === WORKER_KIND) {
  const { settings } = workerData as { settings: { concurrency: number; ca: string } };
  const agent = new Agent(agentOptions(settings));
  parentPort!.on('message', (msg: LoadRequest) => {
    closedLoop(agent, msg.target, msg.options).then(
      (result) => parentPort!.postMessage({ id: msg.id, result } satisfies LoadReply, [result.latenciesMs.buffer as ArrayBuffer]),
      (err: unknown) => parentPort!.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) } satisfies LoadReply),
    );
  });
}

/**
 * Runs the closed loop for `durationMs` and returns what it measured. Requests already in flight
 * at the deadline are allowed to finish and are counted; the elapsed time includes them.
 */
export async function runLoad(agent: Agent, target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  assertLoopback(new URL(target.url));
  const mode = loadMode();
  const cpu0 = process.cpuUsage();
  const main0 = threadCpuMs();
  const elu0 = performance.eventLoopUtilization();
  const measured = () => {
    const cpu = process.cpuUsage(cpu0);
    return { cpuMs: (cpu.user + cpu.system) / 1000, main1: threadCpuMs(), elu: performance.eventLoopUtilization(elu0) };
  };
  if (mode === 'wrk') {
    const w = await runWrk(target, { concurrency: options.concurrency, durationMs: options.durationMs, requestTimeoutMs: options.requestTimeoutMs ?? 10_000 });
    const { cpuMs, main1, elu } = measured();
    const errors = w.statusErrors + w.timeouts + w.transportErrors;
    return {
      mode,
      requests: w.requests + w.transportErrors,
      errors,
      // wrk tells answers apart only as status < 400 or ≥ 400; a timed-out one arrived late.
      statuses: { '<400': w.requests - w.statusErrors, '>=400': w.statusErrors, timeout: w.timeouts, error: w.transportErrors },
      firstError: errors > 0 ? `${w.statusErrors} answers with status >= 400, ${w.timeouts} timeouts and ${w.transportErrors} transport failures (wrk reports no bodies)` : undefined,
      elapsedMs: w.elapsedMs,
      // A late answer may also have a status ≥ 400: never below zero.
      ok: Math.max(0, w.requests - w.statusErrors - w.timeouts),
      latencyMs: w.latencyMs,
      cpuMs,
      mainThreadCpuMs: main0 === undefined || main1 === undefined ? undefined : main1 - main0,
      clientCpuMs: undefined,
      eventLoopUtilization: elu.utilization,
    };
  }
  const loop = mode === 'worker' && agent instanceof LoadAgent ? await agent.thread().run(target, options) : await closedLoop(agent, target, options);
  const { cpuMs, main1, elu } = measured();
  const inline = mode === 'inline' || !(agent instanceof LoadAgent);
  return {
    mode: inline ? 'inline' : 'worker',
    requests: loop.requests,
    errors: loop.errors,
    statuses: loop.statuses,
    firstError: loop.firstError,
    elapsedMs: loop.elapsedMs,
    ok: loop.latenciesMs.length,
    latencyMs: quantilesOf(loop.latenciesMs),
    cpuMs,
    mainThreadCpuMs: main0 === undefined || main1 === undefined ? undefined : main1 - main0,
    clientCpuMs: inline ? undefined : loop.threadCpuMs,
    eventLoopUtilization: elu.utilization,
  };
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}
