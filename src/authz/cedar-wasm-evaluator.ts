import { randomUUID } from 'node:crypto';
import { cedar } from './cedar-wasm.js';
import { AuthzError } from '../core/errors.js';
import {
  type Effect,
  type EvaluationRequest,
  type EvaluationResult,
  type PolicyEvaluator,
  type PolicyId,
  type PolicySetSource,
  type PreparedPolicySet,
  type ValidationResult,
  denyKindOf,
} from './evaluator.js';
import { policiesById } from './policy-set.js';


/** Prepared sets kept parsed inside cedar-wasm at once; older ones are re-parsed when used again. */
const DEFAULT_MAX_RESIDENT = 256;

interface PreparedState {
  readonly staticPolicies: cedar.StaticPolicySet;
  readonly schema: string | undefined;
}

interface ParsedPolicies {
  /** What cedar-wasm is given: the text itself (Cedar's ids) or `{ id: text }`. */
  readonly staticPolicies: cedar.StaticPolicySet;
  /** Each policy's text, by id. */
  readonly policies: ReadonlyMap<PolicyId, string>;
}

let instances = 0;

/**
 * {@link PolicyEvaluator} on `@cedar-policy/cedar-wasm`, the reference engine.
 *
 * Policy sets are parsed once with `preparsePolicySet` (and the schema with `preparseSchema`) and
 * evaluated with `statefulIsAuthorized`. cedar-wasm keeps preparsed sets in Wasm memory and has no
 * way to drop one, so this evaluator names them by slot (`rampart-evaluator/<instance>/<slot>`,
 * distinct from the request-path authorizer's ids) and keeps at most `maxResident`: a set whose
 * slot was reused is parsed again on its next use. Which set occupies a slot is checked on every
 * call, so a request is never evaluated against another set's policies.
 *
 * @example
 * const evaluator = new CedarWasmEvaluator();
 * const set = evaluator.prepare({ policies: 'permit(principal, action, resource);' });
 * evaluator.isAuthorized(set, { principal, action, resource, context: {}, entities: [] });
 */
export class CedarWasmEvaluator implements PolicyEvaluator {
  readonly name = 'cedar-wasm';
  readonly #prefix = `rampart-evaluator/${++instances}`;
  readonly #maxResident: number;
  readonly #states = new WeakMap<PreparedPolicySet, PreparedState>();
  /** Resident sets, least recently used first, and the slot each occupies. */
  readonly #resident = new Map<PreparedState, string>();

  constructor(options: { maxResident?: number } = {}) {
    this.#maxResident = Math.max(1, options.maxResident ?? DEFAULT_MAX_RESIDENT);
  }

  prepare(set: PolicySetSource): PreparedPolicySet {
    const parsed = parsePolicies(set.policies);
    const effects = new Map<PolicyId, Effect>();
    for (const id of [...parsed.policies.keys()].sort()) effects.set(id, effectOf(id, parsed.policies.get(id)!));
    const prepared: PreparedPolicySet = { effects, hasSchema: set.schema !== undefined };
    const state: PreparedState = { staticPolicies: parsed.staticPolicies, schema: set.schema };
    this.#states.set(prepared, state);
    this.#slotOf(state);
    return prepared;
  }

  isAuthorized(prepared: PreparedPolicySet, request: EvaluationRequest): EvaluationResult {
    const state = this.#states.get(prepared);
    if (!state) throw new AuthzError('authz.evaluation_failed', 'policy set was not prepared by this evaluator');
    const slot = this.#slotOf(state);
    const call: cedar.StatefulAuthorizationCall = {
      principal: request.principal,
      action: request.action,
      resource: request.resource,
      context: request.context as cedar.Context,
      entities: request.entities as unknown as cedar.Entities,
      preparsedPolicySetId: slot,
      ...(state.schema === undefined
        ? { validateRequest: false }
        : { preparsedSchemaName: slot, validateRequest: request.validateRequest ?? true }),
    };
    let answer: cedar.AuthorizationAnswer;
    try {
      answer = containsBigInt(request.context) || containsBigInt(request.entities)
        ? withExactIntegers(() => cedar.statefulIsAuthorized(call))
        : cedar.statefulIsAuthorized(call);
    } catch (err) {
      throw new AuthzError('authz.evaluation_failed', `cedar-wasm failed: ${(err as Error).message}`, { cause: err });
    }
    if (answer.type === 'failure') throw failure('request could not be evaluated', answer.errors);
    const { decision, diagnostics } = answer.response;
    const reasons = diagnostics.reason as PolicyId[];
    const errors = diagnostics.errors.map((e) => ({ policyId: e.policyId as PolicyId, message: e.error.message }));
    return decision === 'allow'
      ? { decision: 'allow', reasons, errors }
      : { decision: 'deny', reasons, errors, denyKind: denyKindOf(reasons, prepared.effects) };
  }

  validate(set: Pick<PolicySetSource, 'policies'>, schema: string): ValidationResult {
    let parsed: ParsedPolicies;
    try {
      parsed = parsePolicies(set.policies);
    } catch (err) {
      return { valid: false, errors: [(err as Error).message] };
    }
    const answer = cedar.validate({
      schema,
      policies: { staticPolicies: parsed.staticPolicies },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') return { valid: false, errors: answer.errors.map((e) => e.message) };
    const errors = answer.validationErrors.map((e) => `${e.policyId}: ${e.error.message}`);
    // Cedar up to 4.10 (and the integration tests at the pinned revision) reject a policy whose
    // scope admits no action of the schema; cedar-policy/cedar#2545 made it a warning. Rampart
    // keeps it an error: such a policy can never apply, which is almost always a misspelt action
    // or entity type. Found without matching message text, among the policies Cedar warned about:
    // the policy with its conditions removed has no valid request environment exactly when no
    // action applies to its scope.
    for (const id of new Set(answer.validationWarnings.map((w) => w.policyId))) {
      const policy = parsed.policies.get(id as PolicyId);
      if (policy === undefined) continue;
      const envs = cedar.getValidRequestEnvsPolicy({ ...policyJson(id, policy), conditions: [] }, schema);
      if (envs.type === 'success' && envs.actions.length === 0) {
        errors.push(`${id}: no action of the schema applies to this policy's scope, so it can never be satisfied`);
      }
    }
    return { valid: errors.length === 0, errors };
  }

  /** The slot `state` is parsed in, parsing it again if it was evicted. */
  #slotOf(state: PreparedState): string {
    const resident = this.#resident.get(state);
    if (resident !== undefined) {
      this.#resident.delete(state);
      this.#resident.set(state, resident);
      return resident;
    }
    let slot = `${this.#prefix}/${this.#resident.size}`;
    if (this.#resident.size >= this.#maxResident) {
      const [oldest, oldestSlot] = this.#resident.entries().next().value!;
      this.#resident.delete(oldest);
      slot = oldestSlot;
    }
    const policies = cedar.preparsePolicySet(slot, { staticPolicies: state.staticPolicies });
    if (policies.type === 'failure') throw failure('policy set does not parse', policies.errors);
    if (state.schema !== undefined) {
      const schema = cedar.preparseSchema(slot, state.schema);
      if (schema.type === 'failure') throw failure('schema does not parse', schema.errors);
    }
    this.#resident.set(state, slot);
    return slot;
  }
}

/**
 * Splits the policies and learns each one's id and effect. For one text, cedar-wasm returns the
 * parts sorted by id as strings (`policy0`, `policy1`, `policy10`, `policy11`, `policy2`, …), not
 * in text order; part i therefore has the i-th of Cedar's ids in that same order.
 */
function parsePolicies(source: PolicySetSource['policies']): ParsedPolicies {
  const policies = new Map<PolicyId, string>();
  if (typeof source === 'string') {
    const parts = cedar.policySetTextToParts(source);
    if (parts.type === 'failure') throw failure('policies do not parse', parts.errors);
    if (parts.policy_templates.length > 0) throw new AuthzError('authz.evaluation_failed', 'templates are not supported');
    const ids = parts.policies.map((_, k) => `policy${k}`).sort();
    parts.policies.forEach((text, i) => policies.set(ids[i] as PolicyId, text));
    return { staticPolicies: source, policies };
  }
  let byId: Record<string, string>;
  try {
    byId = policiesById(source);
  } catch (err) {
    throw new AuthzError('authz.evaluation_failed', (err as Error).message, { cause: err });
  }
  for (const [id, text] of Object.entries(byId)) policies.set(id as PolicyId, text);
  return { staticPolicies: byId, policies };
}

/**
 * A policy's effect: the keyword after its annotations (Cedar grammar: `Policy ::= {Annotation}
 * Effect '(' Scope ')' {Conditions} ';'`). The text has parsed already, so scanning past
 * whitespace, comments and `@name("…")` annotations is exact; converting the whole policy to
 * JSON, the fallback, costs far more when a set has thousands of policies.
 */
const EFFECT = /^(?:\s|\/\/[^\n]*(?:\n|$)|@[_a-zA-Z][_a-zA-Z0-9]*(?:\s*\(\s*"(?:[^"\\]|\\.)*"\s*\))?)*(permit|forbid)\b/;
function effectOf(id: string, text: string): Effect {
  const scanned = EFFECT.exec(text)?.[1];
  return scanned === 'permit' || scanned === 'forbid' ? scanned : policyJson(id, text).effect;
}

function policyJson(id: string, text: string): cedar.PolicyJson {
  const json = cedar.policyToJson(text);
  if (json.type === 'failure') throw failure(`policy ${id} does not parse`, json.errors);
  return json.json;
}

function failure(what: string, errors: readonly cedar.DetailedError[]): AuthzError {
  const messages = errors.map((e) => e.message);
  return new AuthzError('authz.evaluation_failed', `${what}: ${messages.join('; ')}`, { details: { errors: messages } });
}

function containsBigInt(value: unknown): boolean {
  if (typeof value === 'bigint') return true;
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(containsBigInt);
  for (const key in value) if (containsBigInt((value as Record<string, unknown>)[key])) return true;
  return false;
}

/*
 * cedar-wasm's glue serializes its argument with the global JSON.stringify, which refuses bigint,
 * and Node 20 has no JSON.rawJSON. A Long beyond ±2^53 (Cedar's Long is 64-bit) can therefore only
 * reach it if JSON.stringify writes bigints as bare integers, so for the duration of that one
 * synchronous call it does. Only requests that carry a bigint take this path.
 */
const nativeStringify = JSON.stringify;
const BIGINT_TAG = `\u0000rampart-bigint-${randomUUID()}:`;
const BIGINT_LITERAL = new RegExp(`"${nativeStringify(BIGINT_TAG).slice(1, -1).replaceAll('\\', '\\\\')}(-?\\d+)"`, 'g');

function stringifyExact(value: unknown): string {
  const text = nativeStringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${BIGINT_TAG}${v}` : v));
  return text.replace(BIGINT_LITERAL, '$1');
}

function withExactIntegers<T>(fn: () => T): T {
  JSON.stringify = ((value: unknown, replacer?: unknown, space?: unknown) =>
    replacer === undefined && space === undefined
      ? stringifyExact(value)
      : nativeStringify(value, replacer as (string | number)[], space as string)) as typeof JSON.stringify;
  try {
    return fn();
  } finally {
    JSON.stringify = nativeStringify;
  }
}
