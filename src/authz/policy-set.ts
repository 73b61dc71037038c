import { cedar } from './cedar-wasm.js';

/**
 * The file of a policy version that links templates (Cedar's policy templates,
 * https://docs.cedarpolicy.com/policies/templates.html): a JSON array of
 * `{ "id": "<linked policy id>", "template": "<template @id>", "values": { "?principal": {"type", "id"}, "?resource": {…} } }`.
 */
export const TEMPLATE_LINKS_FILE = 'template-links.json';

type Slot = '?principal' | '?resource';

/**
 * Splits a version's policy files into individual policies keyed by id, so that decisions name
 * the policy that determined them. The id is the policy's `@id("…")` annotation, or
 * `<file>#<n>` (its position in its file) when it has none. Two policies with one id are an
 * error: a decision must never be attributable to the wrong policy.
 *
 * Templates (policies with `?principal` or `?resource` slots) are not policies themselves; each
 * needs an `@id` so that {@link TEMPLATE_LINKS_FILE} can link it. A linked policy is the
 * template with its slots filled, which is what Cedar evaluates a template-linked policy as, and
 * is keyed by the link's id: every engine and the request path then see plain static policies.
 */
export function policiesById(files: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  let split = splitSets.get(files);
  if (split === undefined) {
    split = Object.freeze(splitPolicies(files));
    splitSets.set(files, split);
  }
  return split;
}

/**
 * Splitting costs about a millisecond per policy in cedar-wasm, and judging one version asks for
 * it several times (validation, the evaluator, the lockout probe, the tests), always with the
 * same files object: remembered per object. Policy files are never mutated once read.
 */
const splitSets = new WeakMap<Readonly<Record<string, string>>, Readonly<Record<string, string>>>();

function splitPolicies(files: Readonly<Record<string, string>>): Record<string, string> {
  // A Map, not an object: an id such as "valueOf" or "__proto__" is a policy id like any other.
  const out = new Map<string, string>();
  const templates = new Map<string, string>();
  for (const file of Object.keys(files).sort()) {
    if (file === TEMPLATE_LINKS_FILE) continue;
    const parts = cedar.policySetTextToParts(files[file]!);
    if (parts.type === 'failure') throw new Error(`${file}: ${parts.errors.map((e) => e.message).join('; ')}`);
    // cedar-wasm names the parts policy0…policyN-1 in file order but returns them sorted by
    // that name as text (policy0, policy1, policy10, policy2, …): recover each one's position.
    const positions = parts.policies.map((_, i) => `policy${i}`).sort().map((id) => Number(id.slice('policy'.length)));
    parts.policies.forEach((text, k) => {
      const n = positions[k]!;
      const scanned = scannedId(text);
      const annotated = scanned === ESCAPED ? annotatedId(cedar.policyToJson(text)) : scanned;
      const id = annotated ?? `${file}#${n}`;
      if (out.has(id) || templates.has(id)) throw new Error(`${file}: policy id "${id}" is used twice`);
      out.set(id, text);
    });
    for (const text of parts.policy_templates) {
      const id = annotatedId(cedar.templateToJson(text));
      if (id === undefined) throw new Error(`${file}: a template needs an @id("…") annotation, so that links can name it`);
      if (out.has(id) || templates.has(id)) throw new Error(`${file}: policy id "${id}" is used twice`);
      templates.set(id, text);
    }
  }
  const links = files[TEMPLATE_LINKS_FILE];
  if (links !== undefined) {
    for (const [id, text] of linkedPolicies(links, templates)) {
      if (out.has(id) || templates.has(id)) throw new Error(`${TEMPLATE_LINKS_FILE}: policy id "${id}" is used twice`);
      out.set(id, text);
    }
  }
  return Object.fromEntries(out);
}

const ESCAPED = Symbol('escaped');
/** Whitespace, a comment, or an annotation with its optional string value (Cedar grammar: `Annotation ::= '@' IDENT ['(' STR ')']`). */
const LEADING_TOKEN = /\s+|\/\/[^\n]*(?:\n|$)|@([_a-zA-Z][_a-zA-Z0-9]*)(?:\s*\(\s*"((?:[^"\\]|\\.)*)"\s*\))?/y;

/**
 * The `@id` of a policy that has parsed, read from the annotations that lead its text: converting
 * each policy to JSON for it costs more than the rest of splitting a large set. A value with an
 * escape sequence is left to Cedar ({@link ESCAPED}) rather than unescaped here.
 */
function scannedId(text: string): string | undefined | typeof ESCAPED {
  let pos = 0;
  for (;;) {
    LEADING_TOKEN.lastIndex = pos;
    const m = LEADING_TOKEN.exec(text);
    if (!m) return undefined;
    if (m[1] === 'id') {
      if (m[2]?.includes('\\')) return ESCAPED;
      return m[2] === undefined || m[2] === '' ? undefined : m[2];
    }
    pos = LEADING_TOKEN.lastIndex;
  }
}

function annotatedId(json: cedar.PolicyToJsonAnswer): string | undefined {
  const id = json.type === 'success' ? json.json.annotations?.id : undefined;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** The linked policies of a links file, as `[id, text]`; throws naming the file and link at fault. */
function linkedPolicies(text: string, templates: ReadonlyMap<string, string>): Array<[string, string]> {
  let links: unknown;
  try {
    links = JSON.parse(text);
  } catch (err) {
    throw new Error(`${TEMPLATE_LINKS_FILE}: not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(links)) throw new Error(`${TEMPLATE_LINKS_FILE}: must be a JSON array of links`);
  return links.map((link: unknown, i): [string, string] => {
    const at = `${TEMPLATE_LINKS_FILE}: link ${i + 1}`;
    if (typeof link !== 'object' || link === null) throw new Error(`${at}: must be {"id", "template", "values"}`);
    const { id, template, values, ...rest } = link as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw new Error(`${at}: unknown field "${Object.keys(rest)[0]}"`);
    if (typeof id !== 'string' || id === '') throw new Error(`${at}: id must be a non-empty string`);
    if (typeof template !== 'string' || !templates.has(template)) throw new Error(`${at}: no template with @id(${JSON.stringify(template)})`);
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new Error(`${at}: values must map ?principal and ?resource to entities`);
    const json = cedar.templateToJson(templates.get(template)!);
    if (json.type === 'failure') throw new Error(`${at}: template ${template} does not parse`);
    const filled = fillSlots(json.json, values as Record<string, unknown>, at);
    const linked = cedar.policyToText({ ...filled, annotations: { ...(filled.annotations ?? {}), id, template } });
    if (linked.type === 'failure') throw new Error(`${at}: ${linked.errors.map((e) => e.message).join('; ')}`);
    return [id, linked.text];
  });
}

/** The template's scope with each slot replaced by its value; every slot needs exactly one value. */
function fillSlots(template: cedar.PolicyJson, values: Record<string, unknown>, at: string): cedar.PolicyJson {
  const used = new Set<Slot>();
  const fill = <C extends cedar.PrincipalConstraint | cedar.ResourceConstraint>(c: C): C => {
    const slotted = (inner: { slot: string } | { entity: cedar.EntityUidJson }) => {
      if (!('slot' in inner)) return inner;
      const slot = inner.slot as Slot;
      used.add(slot);
      const v = values[slot];
      if (typeof v !== 'object' || v === null || typeof (v as { type?: unknown }).type !== 'string' || typeof (v as { id?: unknown }).id !== 'string') {
        throw new Error(`${at}: ${slot} must be {"type": "<entity type>", "id": "<id>"}`);
      }
      const { type, id } = v as { type: string; id: string };
      return { entity: { type, id } };
    };
    if (c.op === '==' || c.op === 'in') return { op: c.op, ...slotted(c) } as C;
    if (c.op === 'is' && c.in) return { ...c, in: slotted(c.in) } as C;
    return c;
  };
  const filled = { ...template, principal: fill(template.principal), resource: fill(template.resource) };
  const extra = Object.keys(values).filter((k) => !used.has(k as Slot));
  if (extra.length > 0) throw new Error(`${at}: the template has no slot ${extra[0]}`);
  return filled;
}

/**
 * True when any policy may read the request context. Decisions of such a policy set depend on
 * per-request values (source address, time) and must not be cached. Deliberately conservative:
 * the word appearing anywhere, even in a string, counts.
 */
export function readsContext(policies: Readonly<Record<string, string>>): boolean {
  return Object.values(policies).some((text) => /\bcontext\b/.test(text));
}
