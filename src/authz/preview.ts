import { type DecisionLogEntry, loggedDecisions } from './decision-log.js';
import type { CheckRequest } from './decisions.js';
import type { DenyKind, EntityJson, PolicyEvaluator, PreparedPolicySet } from './evaluator.js';
import { uidKey } from './schema-actions.js';

/** A logged decision the candidate policy set would decide differently. */
export interface PreviewFlip {
  readonly decision_id: string;
  /** When the logged decision was made. */
  readonly time: string;
  readonly request: CheckRequest;
  readonly before: { readonly decision: 'allow' | 'deny'; readonly policies: readonly string[]; readonly policy_version: number };
  readonly after: { readonly decision: 'allow' | 'deny'; readonly policies: readonly string[]; readonly deny_kind: DenyKind | null };
}

export interface PreviewResult {
  /** Logged decisions replayed. */
  readonly replayed: number;
  readonly flips: readonly PreviewFlip[];
  /** Logged requests the candidate cannot evaluate at all (an action its schema drops, entities it refuses). */
  readonly failed: readonly { readonly decision_id: string; readonly error: string }[];
}

export type LoggedDecision = DecisionLogEntry & { readonly time: string };

/**
 * What the preview reads of the audit log: one tenant's events after an id, narrowed by action and
 * resource id, oldest first (the audit store's `listEvents`, src/audit/query.ts filters).
 */
export interface DecisionLogReader {
  listEvents(
    tenant: string,
    afterId: number,
    limit: number,
    filter: { readonly action: string; readonly resource: string },
  ): Promise<{ readonly items: readonly { readonly payload: string }[]; readonly nextCursor: number | undefined }>;
}

/** Audit events read per page while looking for logged decisions. */
const PAGE = 500;

/**
 * The last `limit` decisions logged for `store`, oldest first, read from the tenant's audit log
 * (the check requests' events: `action` = `decisionAction`, resource id `resource`). The log is
 * read oldest first, so this walks every decision event of the store once; the window is kept
 * bounded while walking.
 */
export async function lastLoggedDecisions(
  audit: DecisionLogReader,
  query: { readonly tenant: string; readonly store: string; readonly resource: string; readonly decisionAction: string; readonly limit: number },
): Promise<LoggedDecision[]> {
  const window: LoggedDecision[] = [];
  let after = 0;
  for (;;) {
    const page = await audit.listEvents(query.tenant, after, PAGE, { action: query.decisionAction, resource: query.resource });
    for (const item of page.items) {
      const { time, entries } = loggedDecisions(item.payload, query.store);
      for (const e of entries) window.push({ ...e, time });
    }
    if (window.length > query.limit) window.splice(0, window.length - query.limit);
    if (page.nextCursor === undefined) return window;
    after = page.nextCursor;
  }
}

/**
 * Replays logged decisions against a candidate policy set and lists every one that would flip
 * between allow and deny. Each request is evaluated with the entities it brought, over the
 * store's current entities (the log records the inline entities, not the store's revision).
 */
export function replayDecisions(
  evaluator: PolicyEvaluator,
  candidate: { readonly prepared: PreparedPolicySet; readonly actions: ReadonlySet<string> | undefined },
  storeEntities: readonly EntityJson[],
  logged: readonly LoggedDecision[],
): PreviewResult {
  const flips: PreviewFlip[] = [];
  const failed: { decision_id: string; error: string }[] = [];
  const base = new Map(storeEntities.map((e) => [uidKey(e.uid), e]));
  for (const entry of logged) {
    const r = entry.request;
    if (candidate.actions && !candidate.actions.has(uidKey(r.action))) {
      failed.push({ decision_id: entry.decision_id, error: `the candidate schema declares no action ${uidKey(r.action)}` });
      continue;
    }
    const entities = new Map(base);
    for (const e of r.entities ?? []) entities.set(uidKey(e.uid), e);
    let result;
    try {
      result = evaluator.isAuthorized(candidate.prepared, {
        principal: r.principal,
        action: r.action,
        resource: r.resource,
        context: r.context ?? {},
        entities: [...entities.values()],
      });
    } catch (err) {
      failed.push({ decision_id: entry.decision_id, error: (err as Error).message });
      continue;
    }
    if (result.decision === entry.decision) continue;
    flips.push({
      decision_id: entry.decision_id,
      time: entry.time,
      request: r,
      before: { decision: entry.decision, policies: entry.policies, policy_version: entry.policy_version },
      after: { decision: result.decision, policies: result.reasons, deny_kind: result.denyKind ?? null },
    });
  }
  return { replayed: logged.length, flips, failed };
}
