/**
 * What every benchmark shares: reading its numeric settings from the environment, and printing
 * figures as JSON lines on stdout (`{"bench", "metric", "value", "unit", …}`) with human notes
 * on stderr, so stdout stays machine-readable.
 */

/** A positive number from environment variable `name`, or `fallback` when unset. */
export function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got "${raw}")`);
  return n;
}

export const note = (text: string): void => void process.stderr.write(`${text}\n`);

/** A printer of JSON lines tagged with the benchmark's name. */
export const emitter =
  (bench: string) =>
  (line: Record<string, unknown>): void =>
    void process.stdout.write(`${JSON.stringify({ bench, ...line })}\n`);

export const round = (n: number, digits: number): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);
