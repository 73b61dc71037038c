/**
 * Checks on Cedar entity JSON (https://docs.cedarpolicy.com/auth/entities-syntax.html) arriving
 * from outside: an entity store replacement or a policy test case. Cedar parses the values and,
 * given a schema, rejects unknown types and non-conforming attributes; Rampart adds what Cedar
 * does not refuse: a repeated entity and a cycle in the parent relation, which would make `in`
 * depend on how the hierarchy is walked.
 */
import { cedar } from './cedar-wasm.js';
import type { EntityJson, EntityUid } from './evaluator.js';

/** Entities in one entity store. */
export const MAX_ENTITIES = 10_000;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{ "type": "User", "id": "alice" }`; throws with `what` named when it is anything else. */
export function parseEntityUid(value: unknown, what: string): EntityUid {
  if (!isRecord(value) || typeof value.type !== 'string' || typeof value.id !== 'string' || value.type === '') {
    throw new Error(`${what} must be {"type": "<entity type>", "id": "<id>"}`);
  }
  const extra = Object.keys(value).filter((k) => k !== 'type' && k !== 'id');
  if (extra.length > 0) throw new Error(`${what} has unknown field ${JSON.stringify(extra[0])}`);
  return { type: value.type, id: value.id };
}

/**
 * Returns the problems of an entity list, empty when it may be stored: at most
 * {@link MAX_ENTITIES}, each `{uid, attrs, parents, tags?}`, no uid twice, no parent cycle, and
 * Cedar's own parse (against `schema` when there is one: unknown entity types, missing or
 * mistyped attributes, disallowed parent types).
 */
export function entityProblems(entities: readonly unknown[], schema: string | null): string[] {
  const problems: string[] = [];
  const parsed: EntityJson[] = [];
  const seen = new Set<string>();
  entities.forEach((e, i) => {
    const at = `entity ${i + 1}`;
    if (!isRecord(e)) return void problems.push(`${at}: must be an object`);
    const extra = Object.keys(e).filter((k) => !['uid', 'attrs', 'parents', 'tags'].includes(k));
    if (extra.length > 0) return void problems.push(`${at}: unknown field ${JSON.stringify(extra[0])}`);
    try {
      const uid = parseEntityUid(e.uid, 'uid');
      if (!isRecord(e.attrs)) throw new Error('attrs must be an object');
      if (e.tags !== undefined && !isRecord(e.tags)) throw new Error('tags must be an object');
      if (!Array.isArray(e.parents)) throw new Error('parents must be a list of {"type", "id"}');
      const parents = e.parents.map((p, k) => parseEntityUid(p, `parents[${k}]`));
      const key = uidKey(uid);
      if (seen.has(key)) throw new Error(`${uid.type}::${JSON.stringify(uid.id)} appears twice`);
      seen.add(key);
      parsed.push({ uid, attrs: e.attrs as EntityJson['attrs'], parents, ...(e.tags === undefined ? {} : { tags: e.tags as EntityJson['tags'] }) });
    } catch (err) {
      problems.push(`${at}: ${(err as Error).message}`);
    }
  });
  if (problems.length > 0) return problems;
  const cycle = parentCycle(parsed);
  if (cycle) return [`parents form a cycle: ${cycle.map((u) => `${u.type}::${JSON.stringify(u.id)}`).join(' -> ')}`];
  const answer = cedar.checkParseEntities({ entities: parsed as cedar.EntityJson[], ...(schema === null ? {} : { schema }) });
  if (answer.type === 'failure') return answer.errors.map((e) => e.message);
  return [];
}

/** A cycle in the parent relation (first entity repeated at the end), or undefined. */
function parentCycle(entities: readonly EntityJson[]): EntityUid[] | undefined {
  const parents = new Map(entities.map((e) => [uidKey(e.uid), e.parents]));
  const state = new Map<string, 'open' | 'done'>();
  const path: EntityUid[] = [];
  // Iterative depth-first search: a deep hierarchy must not overflow the stack.
  for (const root of entities) {
    if (state.has(uidKey(root.uid))) continue;
    const stack: Array<{ uid: EntityUid; next: number }> = [{ uid: root.uid, next: 0 }];
    state.set(uidKey(root.uid), 'open');
    path.push(root.uid);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const ps = parents.get(uidKey(top.uid)) ?? [];
      if (top.next >= ps.length) {
        state.set(uidKey(top.uid), 'done');
        stack.pop();
        path.pop();
        continue;
      }
      const p = ps[top.next++]!;
      const s = state.get(uidKey(p));
      if (s === 'open') {
        const start = path.findIndex((u) => uidKey(u) === uidKey(p));
        return [...path.slice(start), p];
      }
      if (s === undefined) {
        state.set(uidKey(p), 'open');
        stack.push({ uid: p, next: 0 });
        path.push(p);
      }
    }
  }
  return undefined;
}

function uidKey(uid: EntityUid): string {
  return JSON.stringify([uid.type, uid.id]);
}
