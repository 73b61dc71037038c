import type { AuditOutcome } from './event.js';

/**
 * OCSF classification of an audit event (Open Cybersecurity Schema Framework 1.x), so a SIEM that
 * speaks OCSF can file Rampart's events without a custom parser:
 * - Authentication [3002] (category Identity & Access Management [3]): a request whose
 *   credentials were refused.
 * - Entity Management [3004] (category 3): a request that creates, changes or deletes a managed
 *   entity (tenant, token, certificate, policy version) — every mutating method.
 * - API Activity [6003] (category Application Activity [6]): every other API call (reads).
 * - Detection Finding [2004] (category Findings [2]), activity Create [1]: an event the server
 *   raises about behaviour it detected (`secrets:anomaly`), whatever request carried it.
 * `type_uid` is `class_uid * 100 + activity_id`, as OCSF defines it.
 */
export interface OcsfClassification {
  readonly category_uid: 2 | 3 | 6;
  readonly class_uid: 2004 | 3002 | 3004 | 6003;
  readonly activity_id: number;
  readonly type_uid: number;
  /** 1 Success, 2 Failure. */
  readonly status_id: 1 | 2;
  /** 1 Informational, 3 Medium (a refusal worth a look). */
  readonly severity_id: 1 | 3;
}

/** OCSF activity ids shared by Entity Management and API Activity. */
const ACTIVITY_BY_METHOD: Readonly<Record<string, number>> = { POST: 1, GET: 2, HEAD: 2, PUT: 3, PATCH: 3, DELETE: 4 };
const OTHER = 99;
/** Authentication [3002] activity "Logon": presenting credentials to a service. */
const LOGON = 1;
/** Actions of events that report a detection rather than an operation. */
const FINDING_ACTIONS: ReadonlySet<string> = new Set(['secrets:anomaly']);

export function classifyEvent(method: string | null, outcome: AuditOutcome, action: string | null = null): OcsfClassification {
  const status_id = outcome === 'success' ? 1 : 2;
  if (action !== null && FINDING_ACTIONS.has(action)) {
    return { category_uid: 2, class_uid: 2004, activity_id: 1, type_uid: 2004 * 100 + 1, status_id, severity_id: 3 };
  }
  const severity_id = outcome === 'success' || outcome === 'invalid' ? 1 : 3;
  if (outcome === 'unauthenticated') {
    return { category_uid: 3, class_uid: 3002, activity_id: LOGON, type_uid: 3002 * 100 + LOGON, status_id, severity_id };
  }
  // A server-initiated change (first-start bootstrap) has no HTTP method: it creates entities.
  const activity_id = method === null ? 1 : (ACTIVITY_BY_METHOD[method] ?? OTHER);
  const mutating = activity_id === 1 || activity_id === 3 || activity_id === 4;
  const class_uid = mutating ? 3004 : 6003;
  return { category_uid: mutating ? 3 : 6, class_uid, activity_id, type_uid: class_uid * 100 + activity_id, status_id, severity_id };
}
