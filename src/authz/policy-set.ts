import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

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
    parts.policies.forEach((text, n) => {
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
