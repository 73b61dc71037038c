import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `wrk` (https://github.com/wg/wrk, Debian package `wrk`) as the benchmarks' load generator,
 * for `BENCH_CLIENT=wrk`.
 *
 * Why: node:https costs about 0.1 ms of CPU per request on its own thread, so on a 2-core machine
 * it caps every case near 10,000 requests/s. A route cheaper than that (the bare Fastify route of
 * bench/request-path.ts) then measures the client, not the server. wrk is event-driven C on one
 * thread and drives the same bare route at about 40,000/s here, so the server's event loop is the
 * limit in every case.
 *
 * wrk runs as a child process started asynchronously (the servers under test share this event
 * loop). Its Lua `done()` hook prints one JSON line: request and error counts, the measured
 * duration and latency quantiles from its own histogram (microsecond resolution). wrk does not
 * check the server certificate; it only ever targets the loopback addresses runLoad allows.
 */

export interface WrkRequest {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface WrkResult {
  readonly requests: number;
  /** Answers with status ≥ 400 (wrk's `errors.status`). */
  readonly statusErrors: number;
  /** Connect, read, write and timeout failures. */
  readonly transportErrors: number;
  readonly elapsedMs: number;
  /** Latency in milliseconds at quantile q in [0, 1], from wrk's histogram of every request. */
  latencyMs(q: number): number;
}

/**
 * The quantiles the script reports, in percent; latencyMs answers the nearest one at or above q,
 * and the maximum above the last (wrk's `percentile(100)` answers 0).
 */
const QUANTILES = [50, 75, 90, 95, 99, 99.9];

const luaString = (s: string): string => `"${[...Buffer.from(s, 'utf8')].map((b) => `\\${b}`).join('')}"`;

function script(target: WrkRequest): string {
  const lines = [`wrk.method = ${luaString(target.method)}`];
  if (target.body !== undefined) lines.push(`wrk.body = ${luaString(target.body)}`);
  for (const [name, value] of Object.entries(target.headers ?? {})) lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  lines.push(
    'done = function(summary, latency, requests)',
    '  local q = {}',
    `  for _, p in ipairs({ ${QUANTILES.join(', ')} }) do q[#q + 1] = string.format("\\"%s\\": %d", p, latency:percentile(p)) end`,
    '  local e = summary.errors',
    '  q[#q + 1] = string.format("\\"100\\": %d", latency.max)',
    '  io.write(string.format("WRK_RESULT {\\"requests\\": %d, \\"duration_us\\": %d, \\"status\\": %d, \\"transport\\": %d, \\"latency_us\\": {%s}}\\n",',
    '    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout, table.concat(q, ", ")))',
    'end',
  );
  return `${lines.join('\n')}\n`;
}

/** Runs wrk against `target` with `concurrency` keep-alive connections for `durationMs` (whole seconds, at least 1). */
export async function runWrk(target: WrkRequest, options: { concurrency: number; durationMs: number; requestTimeoutMs: number }): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-wrk-'));
  try {
    const file = join(dir, 'request.lua');
    writeFileSync(file, script(target));
    const seconds = Math.max(1, Math.round(options.durationMs / 1000));
    const timeout = Math.max(1, Math.ceil(options.requestTimeoutMs / 1000));
    const args = ['-t1', `-c${options.concurrency}`, `-d${seconds}s`, `--timeout`, `${timeout}s`, '-s', file, target.url];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new Error('BENCH_CLIENT=wrk needs wrk on the PATH (Debian: apt-get install wrk)') : err),
      );
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}: ${out.slice(0, 500)}`))));
    });
    const line = output.split('\n').find((l) => l.startsWith('WRK_RESULT '));
    if (!line) throw new Error(`wrk printed no result: ${output.slice(0, 500)}`);
    const parsed = JSON.parse(line.slice('WRK_RESULT '.length)) as { requests: number; duration_us: number; status: number; transport: number; latency_us: Record<string, number> };
    const quantiles = [...QUANTILES, 100].map((p) => [p / 100, (parsed.latency_us[String(p)] ?? Number.NaN) / 1000] as const);
    return {
      requests: parsed.requests,
      statusErrors: parsed.status,
      transportErrors: parsed.transport,
      elapsedMs: parsed.duration_us / 1000,
      latencyMs: (q) => (quantiles.find(([at]) => at >= q - 1e-9) ?? quantiles[quantiles.length - 1]!)[1],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
