import { cedar } from './cedar-wasm.js';

/**
 * Splits a version's policy files into individual policies keyed by id, so that decisions name
 * the policy that determined them. The id is the policy's `@id("…")` annotation, or
 * `<file>#<n>` (its position in its file) when it has none. Two policies with one id are an
 * error: a decision must never be attributable to the wrong policy.
 */
export function policiesById(files: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of Object.keys(files).sort()) {
    const parts = cedar.policySetTextToParts(files[file]!);
    if (parts.type === 'failure') throw new Error(`${file}: ${parts.errors.map((e) => e.message).join('; ')}`);
    if (parts.policy_templates.length > 0) throw new Error(`${file}: templates are not supported in this policy store`);
    // cedar-wasm names the parts policy0…policyN-1 in file order but returns them sorted by
    // that name as text (policy0, policy1, policy10, policy2, …): recover each one's position.
    const positions = parts.policies.map((_, i) => `policy${i}`).sort().map((id) => Number(id.slice('policy'.length)));
    parts.policies.forEach((text, k) => {
      const n = positions[k]!;
      const json = cedar.policyToJson(text);
      const annotated = json.type === 'success' ? json.json.annotations?.id : undefined;
      const id = typeof annotated === 'string' && annotated !== '' ? annotated : `${file}#${n}`;
      if (id in out) throw new Error(`${file}: policy id "${id}" is used twice`);
      out[id] = text;
    });
  }
  return out;
}

/**
 * True when any policy may read the request context. Decisions of such a policy set depend on
 * per-request values (source address, time) and must not be cached. Deliberately conservative:
 * the word appearing anywhere, even in a string, counts.
 */
export function readsContext(policies: Readonly<Record<string, string>>): boolean {
  return Object.values(policies).some((text) => /\bcontext\b/.test(text));
}
