/**
 * Validation of a candidate policy version before it may become active: every file and the
 * schema must parse, and the policies must pass Cedar's strict validation against the schema
 * (https://docs.cedarpolicy.com/policies/validation.html). Problems are reported as
 * `<file>:<line>:<column>: <message>` so that a push from a directory points at the line to fix.
 */
import { cedar } from './cedar-wasm.js';
import type { PolicyEvaluator } from './evaluator.js';
import { TEMPLATE_LINKS_FILE, policiesById } from './policy-set.js';
import { positionOf } from './source-position.js';

/** The name a pushed schema is reported under, as `rampart policy push` reads it from a directory. */
export const SCHEMA_FILE = 'schema.cedarschema';

export type ValidationFailure =
  | { readonly kind: 'parse'; readonly reasons: readonly string[] }
  | { readonly kind: 'invalid'; readonly reasons: readonly string[] };

/**
 * Returns undefined when the policies parse and, with a schema, validate strictly; otherwise the
 * first stage that failed with all of its problems.
 */
export function validatePolicySet(
  evaluator: PolicyEvaluator,
  policies: Readonly<Record<string, string>>,
  schema: string | null,
): ValidationFailure | undefined {
  const parse: string[] = [];
  const cedarFiles = Object.keys(policies)
    .filter((f) => f !== TEMPLATE_LINKS_FILE)
    .sort();
  const split = new Map<string, cedar.PolicySetTextToPartsAnswer>();
  for (const file of cedarFiles) {
    const text = policies[file]!;
    const answer = cedar.policySetTextToParts(text);
    split.set(file, answer);
    if (answer.type === 'failure') parse.push(...located(file, text, answer.errors));
  }
  if (schema !== null) {
    const answer = cedar.checkParseSchema(schema);
    if (answer.type === 'failure') parse.push(...located(SCHEMA_FILE, schema, answer.errors));
  }
  if (parse.length === 0) {
    try {
      policiesById(policies);
    } catch (err) {
      parse.push((err as Error).message);
    }
  }
  if (parse.length > 0) return { kind: 'parse', reasons: parse };
  if (schema === null) return undefined;

  // File by file, so that Cedar's offsets point into the file: strict validation judges each
  // policy on its own, so splitting the set changes no verdict.
  const invalid: string[] = [];
  for (const file of cedarFiles) {
    const text = policies[file]!;
    const parts = split.get(file)!;
    // A file of static policies is validated as one text (Cedar's offsets are then the file's);
    // templates cannot be part of a static text, so a file with any is validated part by part.
    const { staticPolicies, templates, startOf } =
      parts.type === 'success' && parts.policy_templates.length > 0 ? partsOf(text, parts) : { staticPolicies: text, templates: {}, startOf: new Map<string, number>() };
    const answer = cedar.validate({ schema, policies: { staticPolicies, templates }, validationSettings: { mode: 'strict' } });
    if (answer.type === 'failure') invalid.push(...located(file, text, answer.errors));
    else for (const e of answer.validationErrors) invalid.push(...located(file, text, [e.error], startOf.get(e.policyId) ?? 0));
  }
  if (invalid.length > 0) return { kind: 'invalid', reasons: invalid };
  // The evaluator's own verdict on the whole set, linked templates included, with the checks it
  // adds to Cedar's (a policy whose scope admits no action of the schema is an error there): one
  // definition of "valid".
  const whole = evaluator.validate({ policies }, schema);
  return whole.valid ? undefined : { kind: 'invalid', reasons: whole.errors };
}

/**
 * A file's policies and templates, each under an id of its own, with the byte offset where each
 * starts in the file (cedar-wasm returns them as verbatim slices of the text, so Cedar's
 * offsets into a part become offsets into the file).
 */
function partsOf(
  text: string,
  parts: cedar.PolicySetTextToPartsAnswer,
): { staticPolicies: Record<string, string>; templates: Record<string, string>; startOf: Map<string, number> } {
  const staticPolicies: Record<string, string> = {};
  const templates: Record<string, string> = {};
  const startOf = new Map<string, number>();
  if (parts.type === 'failure') return { staticPolicies, templates, startOf };
  const place = (id: string, part: string) => startOf.set(id, Buffer.byteLength(text.slice(0, Math.max(0, text.indexOf(part)))));
  parts.policies.forEach((part, i) => {
    staticPolicies[`p${i}`] = part;
    place(`p${i}`, part);
  });
  parts.policy_templates.forEach((part, i) => {
    templates[`t${i}`] = part;
    place(`t${i}`, part);
  });
  return { staticPolicies, templates, startOf };
}

function located(file: string, text: string, errors: readonly cedar.DetailedError[], base = 0): string[] {
  return errors.map((e) => {
    const at = e.sourceLocations?.[0];
    const where = at === undefined ? file : `${file}:${positionOf(text, base + at.start).line}:${positionOf(text, base + at.start).column}`;
    const label = at?.label ? ` (${at.label})` : '';
    const help = e.help ? `; ${e.help}` : '';
    // The position names the policy; the id partsOf gave it would only confuse.
    const message = e.message.replace(/^for (?:policy|template) `[^`]*`, /, '');
    return `${where}: ${message}${label}${help}`;
  });
}
