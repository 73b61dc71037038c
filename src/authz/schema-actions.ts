import { cedar } from './cedar-wasm.js';
import type { EntityUid } from './entities.js';

/**
 * The actions a Cedar schema declares, as `Type::"id"` keys. In a schema every action is an
 * entity of type `<namespace>::Action` (`Action` in the empty namespace), so a request naming
 * anything else is an action the store does not know
 * (https://docs.cedarpolicy.com/schema/human-readable-schema.html#schema-actions).
 *
 * Returns undefined when the schema does not parse: the version could not have been activated
 * with it, and the evaluator reports the parse error itself.
 */
export function schemaActions(schema: string): ReadonlySet<string> | undefined {
  const answer = cedar.schemaToJson(schema);
  if (answer.type === 'failure') return undefined;
  const out = new Set<string>();
  const namespaces = answer.json as Record<string, { actions?: Record<string, unknown> }>;
  for (const [namespace, body] of Object.entries(namespaces)) {
    const type = namespace === '' ? 'Action' : `${namespace}::Action`;
    for (const id of Object.keys(body.actions ?? {})) out.add(uidKey({ type, id }));
  }
  return out;
}

/** An entity uid as Cedar writes it, `Type::"id"`: one key per entity, for sets and maps. */
export const uidKey = (uid: EntityUid): string => `${uid.type}::${JSON.stringify(uid.id)}`;
