import { RequestError } from '../core/errors.js';
import type { AuditOutcome } from './event.js';

/**
 * Filters of `GET /v1/audit/events`. Every filter narrows; absent filters match everything. The
 * tenant is not a filter here: the addressed tenant (X-Rampart-Tenant) is always applied, so a
 * filter can never widen what the caller is authorized to read.
 */
export interface EventFilter {
  /** RFC 3339 time, inclusive. */
  readonly since?: string;
  /** RFC 3339 time, exclusive. */
  readonly until?: string;
  /** `Type::"id"` or the bare id (token accessor, SPIFFE ID). */
  readonly principal?: string;
  readonly action?: string;
  /** `Type::"id"` or the bare id. */
  readonly resource?: string;
  readonly outcome?: AuditOutcome;
}

const OUTCOMES: readonly AuditOutcome[] = ['success', 'denied', 'invalid', 'failed', 'unauthenticated'];

/** The indexed columns an event is found by, derived from its payload when it is stored. */
export interface EventIndexFields {
  readonly eventTime: string | null;
  readonly principalId: string | null;
  readonly action: string | null;
  readonly resource: string | null;
  readonly outcome: string | null;
}

export function indexFieldsOf(payload: string): EventIndexFields {
  const e = JSON.parse(payload) as {
    time?: string;
    principal?: { id?: string } | null;
    action?: string | null;
    resource?: { type?: string; id?: string } | null;
    outcome?: string;
  };
  return {
    eventTime: typeof e.time === 'string' ? e.time : null,
    principalId: indexable(e.principal?.id),
    action: indexable(e.action),
    resource: indexable(e.resource?.id),
    outcome: e.outcome ?? null,
  };
}

/**
 * PostgreSQL text cannot hold U+0000, which a request can put in an id (`%00` in a URL); the
 * payload keeps it (JSON escapes it), the indexed copy gets U+FFFD instead of failing the write.
 */
function indexable(value: string | null | undefined): string | null {
  return typeof value === 'string' ? value.replaceAll('\u0000', '\uFFFD') : null;
}

/**
 * Parses query parameters into a filter. Times must be RFC 3339 and are normalized to the
 * stored form (`Date#toISOString`), so that text comparison in the store is time comparison.
 */
export function parseEventFilter(q: Readonly<Record<string, string | undefined>>): EventFilter {
  const filter: { -readonly [K in keyof EventFilter]: EventFilter[K] } = {};
  for (const key of ['since', 'until'] as const) {
    const v = q[key];
    if (v === undefined) continue;
    const t = Date.parse(v);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(v) || Number.isNaN(t)) throw new RequestError('request.invalid', `${key} must be an RFC 3339 time`);
    filter[key] = new Date(t).toISOString();
  }
  if (q.principal !== undefined) filter.principal = bareId(q.principal);
  if (q.resource !== undefined) filter.resource = bareId(q.resource);
  if (q.action !== undefined) filter.action = q.action;
  if (q.outcome !== undefined) {
    if (!OUTCOMES.includes(q.outcome as AuditOutcome)) throw new RequestError('request.invalid', `outcome must be one of ${OUTCOMES.join(', ')}`);
    filter.outcome = q.outcome as AuditOutcome;
  }
  return filter;
}

/** `Rampart::Token::"abc"` → `abc`; a bare id stays as it is. */
function bareId(value: string): string {
  const m = /^[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*::"(.*)"$/.exec(value);
  return m ? m[1]! : value;
}
