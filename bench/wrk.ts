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
 * duration and its latency histogram (microsecond resolution). wrk 4 has already "corrected" that
 * histogram for coordinated omission when `done()` runs, adding samples that were never measured
 * below every long latency (wrk.c, `stats_correct`); {@link uncorrectedLatencies} takes them out
 * again, so the quantiles are of the requests wrk timed, as node:https's are. The histogram holds
 * every answer, error statuses included (a run with errors is invalid anyway), and nothing of the
 * requests still in flight when wrk stopped: it neither counts nor times those. wrk does not check
 * the server certificate; it only ever targets the loopback addresses runLoad allows.
 */

export interface WrkRequest {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface WrkResult {
  /** Answers wrk read, including those that arrived after its timeout. */
  readonly requests: number;
  /** Answers with status ≥ 400 (wrk's `errors.status`). */
  readonly statusErrors: number;
  /** Answers that arrived after the timeout (wrk counts them in `requests` too). */
  readonly timeouts: number;
  /** Connect, read and write failures. */
  readonly transportErrors: number;
  readonly elapsedMs: number;
  /** Nearest-rank latency in milliseconds at quantile q in [0, 1] of the answers; NaN when none. */
  latencyMs(q: number): number;
}

/**
 * wrk's latency histogram without the samples its coordinated-omission correction added.
 * `stats_correct(stats, interval)` walks the values n ≥ 2·interval upwards and adds each one's
 * count to n − interval, n − 2·interval, … while those stay above `interval`. So a recorded count
 * is the corrected count minus what the values interval, 2·interval, … above it contributed, and
 * working down from the largest value recovers it exactly. Throws when the histogram is not one
 * that correction produced (a count would go negative).
 */
export function uncorrectedLatencies(histogram: readonly (readonly [number, number])[], interval: number): [number, number][] {
  const corrected = new Map(histogram);
  const max = Math.max(0, ...corrected.keys());
  const recorded = new Map<number, number>();
  for (const value of [...corrected.keys()].sort((a, b) => b - a)) {
    let count = corrected.get(value) as number;
    if (interval > 0 && value > interval) for (let above = value + interval; above <= max; above += interval) count -= recorded.get(above) ?? 0;
    if (count < 0) throw new Error(`wrk's latency histogram does not undo (${count} answers of ${value} µs)`);
    recorded.set(value, count);
  }
  return [...recorded].filter(([, count]) => count > 0).sort((a, b) => a[0] - b[0]);
}

const luaString = (s: string): string => `"${[...Buffer.from(s, 'utf8')].map((b) => `\\${b}`).join('')}"`;

function script(target: WrkRequest): string {
  const lines = [`wrk.method = ${luaString(target.method)}`];
  if (target.body !== undefined) lines.push(`wrk.body = ${luaString(target.body)}`);
  for (const [name, value] of Object.entries(target.headers ?? {})) lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  // `latency(i)` is the i-th distinct value (µs) and its count; `#latency` how many there are.
  lines.push(
    'done = function(summary, latency, requests)',
    '  local h = {}',
    '  for i = 1, #latency do local v, c = latency(i); h[#h + 1] = string.format("[%d,%d]", v, c) end',
    '  local e = summary.errors',
    '  io.write(string.format("WRK_RESULT {\\"requests\\": %d, \\"duration_us\\": %d, \\"status\\": %d, \\"timeout\\": %d, \\"transport\\": %d, \\"histogram\\": [%s]}\\n",',
    '    summary.requests, summary.duration, e.status, e.timeout, e.connect + e.read + e.write, table.concat(h, ",")))',
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
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}: ${out.slice(0, 500)}`))));
    });
    const line = output.split('\n').find((l) => l.startsWith('WRK_RESULT '));
    if (!line) throw new Error(`wrk printed no result: ${output.slice(0, 500)}`);
    const parsed = JSON.parse(line.slice('WRK_RESULT '.length)) as {
      requests: number;
      duration_us: number;
      status: number;
      timeout: number;
      transport: number;
      histogram: [number, number][];
    };
    // wrk.c: the correction's interval is the run time over the answers per connection.
    const perConnection = Math.floor(parsed.requests / options.concurrency);
    const histogram = uncorrectedLatencies(parsed.histogram, perConnection > 0 ? Math.floor(parsed.duration_us / perConnection) : 0);
    const total = histogram.reduce((n, [, count]) => n + count, 0);
    return {
      requests: parsed.requests,
      statusErrors: parsed.status,
      timeouts: parsed.timeout,
      transportErrors: parsed.transport,
      elapsedMs: parsed.duration_us / 1000,
      latencyMs: (q) => {
        const rank = Math.min(total, Math.max(1, Math.ceil(q * total)));
        let seen = 0;
        for (const [value, count] of histogram) if ((seen += count) >= rank) return value / 1000;
        return Number.NaN;
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
