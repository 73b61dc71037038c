/**
 * The policy engine behind application policy stores, as one interface: whatever evaluates Cedar
 * for a tenant's own policies (cedar-wasm today, a faster engine later) implements
 * {@link PolicyEvaluator} and is held to the same conformance suite
 * (`test/authz/cedar-conformance.test.ts`, the Cedar integration tests at a pinned revision).
 *
 * Semantics are Cedar's (https://docs.cedarpolicy.com/auth/authorization.html): a request is
 * allowed when at least one `permit` is satisfied and no `forbid` is; otherwise it is denied, so
 * a deny is either an explicit forbid or the absence of any permit. A policy whose condition
 * raises an error is skipped (neither satisfied nor unsatisfied) and reported in `errors`.
 */
import type { EntityUid } from './entities.js';

/** The id of one policy inside a prepared set; see {@link PolicySetSource} for how ids are assigned. */
export type PolicyId = string & { readonly __brand: 'PolicyId' };

/** A Cedar entity reference, `{ "type": "User", "id": "alice" }`. */
export type { EntityUid };

/**
 * A value in Cedar's JSON entity format (https://docs.cedarpolicy.com/auth/entities-syntax.html):
 * records, sets, strings, booleans, Longs, `{ "__entity": … }` and `{ "__extn": … }`.
 * A Long outside ±2^53 must be a `bigint`: a JavaScript number cannot hold it exactly.
 */
export type CedarValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly CedarValue[]
  | { readonly [key: string]: CedarValue };

export interface EntityJson {
  readonly uid: EntityUid;
  readonly attrs: { readonly [key: string]: CedarValue };
  readonly parents: readonly EntityUid[];
  readonly tags?: { readonly [key: string]: CedarValue };
}

/**
 * A policy set to prepare.
 *
 * Policy ids:
 * - `policies` as one string: Cedar's own ids, `policy0`, `policy1`, … in the order the policies
 *   appear in the text. `@id` annotations are not used as ids (Cedar does not either); this is
 *   the form of the Cedar integration tests, whose expected `reason` lists use these ids.
 * - `policies` as files (`{ "<file>": "<text>" }`): the `@id("…")` annotation of a policy, else
 *   `<file>#<n>`; see `policiesById` in `./policy-set.js`, which the request-path authorizer
 *   uses too, so both name a policy the same way. Two policies with one id are an error.
 *
 * In the files form a template is linked through a `template-links.json` file: each link
 * becomes a static policy named by its link id (see `policiesById`).
 */
export interface PolicySetSource {
  readonly policies: Readonly<Record<string, string>> | string;
  /** Cedar schema, human-readable syntax. With it, entities and context are parsed against it. */
  readonly schema?: string;
}

export type Effect = 'permit' | 'forbid';

/**
 * A policy set an evaluator has parsed and may evaluate many times. Opaque: only the evaluator
 * that returned it may evaluate it.
 */
export interface PreparedPolicySet {
  /** Each policy's id and effect, in id order. */
  readonly effects: ReadonlyMap<PolicyId, Effect>;
  readonly hasSchema: boolean;
}

export interface EvaluationRequest {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: { readonly [key: string]: CedarValue };
  readonly entities: readonly EntityJson[];
  /**
   * Check principal, action, resource and context against the schema before evaluating (Cedar's
   * request validation). Defaults to true, as in Cedar and its integration tests; ignored when the
   * set was prepared without a schema.
   */
  readonly validateRequest?: boolean;
}

/** A policy whose evaluation raised an error (and was therefore skipped). */
export interface EvaluationError {
  readonly policyId: PolicyId;
  readonly message: string;
}

/**
 * Why a request was denied. `forbid`: a satisfied `forbid` policy overrides every permit.
 * `no_permit`: no `permit` was satisfied (Cedar's default deny), including when the only permits
 * that could have applied raised errors.
 */
export type DenyKind = 'forbid' | 'no_permit';

interface ResultBase {
  /**
   * The determining policies: for an allow, the satisfied permits; for a deny, the satisfied
   * forbids (empty for a default deny). Audited; never shown to the caller.
   */
  readonly reasons: readonly PolicyId[];
  readonly errors: readonly EvaluationError[];
}

export type EvaluationResult =
  | (ResultBase & { readonly decision: 'allow'; readonly denyKind?: undefined })
  | (ResultBase & { readonly decision: 'deny'; readonly denyKind: DenyKind });

export interface ValidationResult {
  /** True when the policies pass strict validation against the schema. */
  readonly valid: boolean;
  /** One line per problem, prefixed with the policy id when there is one. */
  readonly errors: readonly string[];
}

/**
 * A Cedar engine for application policy stores.
 *
 * Contract, for every implementation (enforced by `test/authz/cedar-conformance.test.ts`):
 * decisions, determining policies and erroring policies agree with Cedar's on the integration
 * test corpus, and `validate` agrees with its `shouldValidate`.
 */
export interface PolicyEvaluator {
  /** Short name for test titles and benchmark output. */
  readonly name: string;
  /**
   * Parses a policy set (and its schema) once, for many evaluations.
   * Throws AuthzError `authz.evaluation_failed` when a policy or the schema does not parse.
   */
  prepare(set: PolicySetSource): PreparedPolicySet | Promise<PreparedPolicySet>;
  /**
   * Decides one request. Throws AuthzError `authz.evaluation_failed` when the request itself
   * cannot be evaluated (entities or context malformed, or not conforming to the schema under
   * request validation): that is no decision, and a caller must treat it as a deny.
   */
  isAuthorized(prepared: PreparedPolicySet, request: EvaluationRequest): EvaluationResult;
  /**
   * Strict validation (https://docs.cedarpolicy.com/policies/validation.html). A policy or schema
   * that does not parse is reported as invalid, not thrown.
   */
  validate(set: Pick<PolicySetSource, 'policies'>, schema: string): ValidationResult;
}

/**
 * The deny kind Cedar's semantics imply: a deny determined by at least one forbid is `forbid`,
 * any other deny is `no_permit`.
 */
export function denyKindOf(reasons: readonly PolicyId[], effects: ReadonlyMap<PolicyId, Effect>): DenyKind {
  return reasons.some((id) => effects.get(id) === 'forbid') ? 'forbid' : 'no_permit';
}
