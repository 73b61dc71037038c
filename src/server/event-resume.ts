/**
 * Resuming a server-sent event stream after a reconnection (WHATWG HTML §9.2.4: the client sends
 * the last `id:` it saw as `Last-Event-ID`). Shared by the event streams whose events are rows of
 * a change log with increasing ids, pruned from the oldest end: `GET /v1/secrets/events` and
 * `GET /v1/pki/events`.
 */

/** An event id as the streams hand them out: decimal digits, at most 15 of them (below 2^53). */
export const EVENT_ID_PATTERN = '^[0-9]{1,15}$';
const EVENT_ID = new RegExp(EVENT_ID_PATTERN);

/**
 * The id to resume after: the `Last-Event-ID` header when it is a valid id, else `fallback` (a
 * query parameter the route's schema already validated). `header` comes from the network: any
 * other value (repeated, signed, huge, not a number) is treated as absent.
 */
export function resumePointOf(header: string | string[] | undefined, fallback?: string): number | undefined {
  const text = typeof header === 'string' && EVENT_ID.test(header) ? header : fallback;
  return text === undefined ? undefined : Number(text);
}

/**
 * Whether the log no longer holds every event after `resumeAfter`: events after it were pruned
 * (`first`, the oldest id still held, is past `resumeAfter + 1`; or the log is empty though it
 * has handed out ids past `resumeAfter`), or the id was never handed out here (past `last`, the
 * newest id). The stream must then say `resync`: the client re-reads what it watches.
 */
export function resumeLost(resumeAfter: number, first: number | undefined, last: number): boolean {
  return resumeAfter > last || (first !== undefined && resumeAfter < first - 1) || (first === undefined && resumeAfter < last);
}
