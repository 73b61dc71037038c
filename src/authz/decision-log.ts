import type { CheckRequest, Decision } from './decisions.js';

/**
 * One decision as the decision log records it, inside the audit event of the check request that
 * asked for it (`details.decisions`, one JSON text per decision; docs/audit-events.md). It holds
 * everything needed to replay the request against another policy set (src/authz/preview.ts).
 */
export interface DecisionLogEntry {
  readonly decision_id: string;
  readonly decision: 'allow' | 'deny';
  readonly deny_kind: 'forbid' | 'no_permit' | null;
  readonly policy_version: number;
  readonly entity_revision: number;
  /** The determining policies. */
  readonly policies: readonly string[];
  readonly errors: readonly string[];
  readonly request: CheckRequest;
}

/** The audit details of a check or batch request: which store, and the decisions logged. */
export interface DecisionLogDetails {
  readonly [key: string]: string | number | readonly string[];
  readonly store: string;
  /** Decisions the request made. */
  readonly decisions_total: number;
  /** Decisions logged: every deny, and the sampled share of allows. */
  readonly decisions_logged: number;
  /** One {@link DecisionLogEntry} per logged decision, as JSON text. */
  readonly decisions: readonly string[];
}

/**
 * The decision log of one request. Every deny is logged; an allow with probability `allowSample`
 * (1 logs every allow, 0 none). Sampling needs no unpredictability, only a fair share, so
 * `Math.random` will do; tests pass their own `random`.
 */
export function decisionLogDetails(
  store: string,
  decided: readonly { readonly request: CheckRequest; readonly decision: Decision }[],
  allowSample: number,
  random: () => number = Math.random,
): DecisionLogDetails {
  const decisions: string[] = [];
  for (const { request, decision: d } of decided) {
    if (d.decision === 'allow' && !(allowSample >= 1 || random() < allowSample)) continue;
    const entry: DecisionLogEntry = {
      decision_id: d.decisionId,
      decision: d.decision,
      deny_kind: d.denyKind ?? null,
      policy_version: d.policyVersion,
      entity_revision: d.entityRevision,
      policies: d.reasons,
      errors: d.errors,
      request,
    };
    decisions.push(JSON.stringify(entry));
  }
  return { store, decisions_total: decided.length, decisions_logged: decisions.length, decisions };
}

/**
 * The decision log entries an audit event payload carries; none when it is not a decision log
 * event of `store` (or was pruned). The payload comes from the store, so it is parsed
 * defensively: an entry that is not a decision is skipped, never trusted.
 */
export function loggedDecisions(payload: string, store: string): { time: string; entries: DecisionLogEntry[] } {
  const none = { time: '', entries: [] };
  if (payload === '') return none;
  let event: { time?: unknown; details?: { store?: unknown; decisions?: unknown } };
  try {
    event = JSON.parse(payload) as typeof event;
  } catch {
    return none;
  }
  const details = event.details;
  if (!details || details.store !== store || !Array.isArray(details.decisions)) return none;
  const entries: DecisionLogEntry[] = [];
  for (const text of details.decisions) {
    if (typeof text !== 'string') continue;
    try {
      const e = JSON.parse(text) as DecisionLogEntry;
      if ((e.decision === 'allow' || e.decision === 'deny') && typeof e.decision_id === 'string' && e.request && typeof e.request === 'object') entries.push(e);
    } catch {
      /* not a decision: skipped */
    }
  }
  return { time: typeof event.time === 'string' ? event.time : '', entries };
}
