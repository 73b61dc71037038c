import { parseDuration } from '../core/duration.js';
import { SecretsError } from '../core/errors.js';

/**
 * Reading fields of Vault request bodies. Vault clients send numbers as JSON numbers or numeric
 * strings and booleans as JSON booleans or "true"/"false"; both are accepted, anything else is a
 * `secrets.invalid_request` naming the field. Bodies come from the network: nothing is trusted.
 */
type Body = Readonly<Record<string, unknown>>;

function invalid(name: string, expected: string): SecretsError {
  return new SecretsError('secrets.invalid_request', `${name}: expected ${expected}`);
}

export function optionalInt(body: Body, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(name, `an integer between ${min} and ${max}`);
  return n;
}

export function optionalBool(body: Body, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw invalid(name, 'a boolean');
}

export function optionalString(body: Body, name: string, maxLength = 4096): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > maxLength) throw invalid(name, `a string of at most ${maxLength} characters`);
  return v;
}

/** A duration (`"1h"`, `"90s"`) or a number of seconds, in whole seconds. */
export function optionalDurationSeconds(body: Body, name: string): number | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') return undefined;
  const ms = typeof v === 'number' || typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined) throw invalid(name, 'a duration such as "90s", "1h" or a number of seconds');
  return Math.floor(ms / 1000);
}

export function optionalStringList(body: Body, name: string): string[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  // Vault accepts a comma-separated string wherever it takes a list.
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v;
  if (!Array.isArray(list) || list.length > 256 || !list.every((s) => typeof s === 'string' && s.length <= 256)) {
    throw invalid(name, 'a list of strings');
  }
  return list as string[];
}

export function optionalStringMap(body: Body, name: string): Record<string, string> | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(name, 'an object of strings');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 64 || !entries.every(([k, s]) => typeof s === 'string' && k.length <= 128 && s.length <= 512)) {
    throw invalid(name, 'at most 64 string keys (128 characters) with string values (512 characters)');
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** KV's `versions`: a non-empty list of positive integers. */
export function versionList(body: Body): number[] {
  const v = body.versions;
  const list = typeof v === 'string' ? v.split(',') : v;
  if (!Array.isArray(list) || list.length === 0 || list.length > 1000) throw invalid('versions', 'a non-empty list of version numbers');
  return list.map((x) => {
    const n = typeof x === 'number' ? x : typeof x === 'string' && /^\d+$/.test(x.trim()) ? Number(x) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw invalid('versions', 'a non-empty list of version numbers');
    return n;
  });
}

/** Go's duration formatting as Vault prints TTLs in responses (`0s`, `1h0m0s`). */
export function formatSeconds(total: number): string {
  if (total === 0) return '0s';
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}
