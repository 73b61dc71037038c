import { AuditError } from '../core/errors.js';
import { MAX_ENTRY_BYTES } from './tiles.js';

/**
 * Keeps every audit event within the largest entry the log can hold: a C2SP tlog-tiles entry
 * bundle prefixes each entry with a uint16 length, so an entry is at most 65,535 bytes.
 *
 * Requests control parts of an event (resource ids from the URL, details from the body), so an
 * oversized event must be impossible to produce, not merely refused — a refusal would turn an
 * unusual request into an unauditable, hence failed, one. {@link boundEventFields} shrinks an
 * oversized event deterministically, in two steps, and says so in `details.truncated`:
 *
 * 1. every string is cut to {@link MAX_FIELD_CHARS} characters, every list to
 *    {@link MAX_LIST_ITEMS} items, `details` to {@link MAX_LIST_ITEMS} keys;
 * 2. if that is still too large, `details` and the sealed `subject` are dropped.
 *
 * After step 2 what remains is 15 short fields and at most 33 policy names of ≤ 128 characters,
 * at most 6 JSON bytes each (`\u0000`): under 40 KB, whatever the request. Events that fit are
 * left exactly as they are.
 */
export const MAX_FIELD_CHARS = 128;
export const MAX_LIST_ITEMS = 32;

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function cutString(s: string): string {
  // Whole code points only, so a cut never leaves half a surrogate pair (invalid UTF-8).
  const points = Array.from(s);
  return points.length <= MAX_FIELD_CHARS ? s : `${points.slice(0, MAX_FIELD_CHARS).join('')}…`;
}

function cut(value: unknown): unknown {
  if (typeof value === 'string') return cutString(value);
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_LIST_ITEMS).map(cut);
    return value.length > MAX_LIST_ITEMS ? [...items, `… ${value.length - MAX_LIST_ITEMS} more`] : items;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    return Object.fromEntries(entries.slice(0, MAX_LIST_ITEMS).map(([k, v]) => [cutString(k), cut(v)]));
  }
  return value;
}

/**
 * The serialized form of `ordered` (the event's fields in their fixed order), shrunk as described
 * above when it exceeds MAX_ENTRY_BYTES.
 */
export function serializeBounded(ordered: Record<string, unknown>): string {
  const full = JSON.stringify(ordered);
  if (full.length * 3 <= MAX_ENTRY_BYTES) return full; // cheap: at most 3 UTF-8 bytes per UTF-16 unit
  const originalBytes = utf8Bytes(full);
  if (originalBytes <= MAX_ENTRY_BYTES) return full;
  const { details, subject, ...rest } = ordered;
  const shortened: Record<string, unknown> = cut(rest) as Record<string, unknown>;
  const truncated = { truncated: true, original_bytes: originalBytes };
  const step1 = JSON.stringify({ ...shortened, details: { ...(details === undefined ? {} : (cut(details) as object)), ...truncated }, ...(subject === undefined ? {} : { subject }) });
  if (utf8Bytes(step1) <= MAX_ENTRY_BYTES) return step1;
  return JSON.stringify({ ...shortened, details: truncated });
}

/**
 * The log's own guard: refuses a payload larger than an entry bundle can carry with
 * `audit.entry_too_large` (nothing is written; the request fails closed).
 */
export function requireEntrySize(payload: string): void {
  if (payload.length * 3 <= MAX_ENTRY_BYTES) return;
  const bytes = utf8Bytes(payload);
  if (bytes > MAX_ENTRY_BYTES) {
    throw new AuditError('audit.entry_too_large', `an audit entry of ${bytes} bytes exceeds the ${MAX_ENTRY_BYTES}-byte limit of the log`, {
      details: { bytes, limit: MAX_ENTRY_BYTES },
    });
  }
}
