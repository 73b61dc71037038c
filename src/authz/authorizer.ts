import type { Principal } from '../identity/principal.js';
import type { EntityUid } from './entities.js';

export interface AuthzRequest {
  /** The tenant addressed; its `rampart` policy store decides. */
  readonly tenant: string;
  readonly principal: Principal;
  readonly action: string;
  readonly resource: EntityUid;
  readonly context: Readonly<Record<string, string | number | boolean>>;
}

export interface AuthzDecision {
  readonly decision: 'allow' | 'deny';
  /** Ids of the policies that determined the decision. Audited; never shown to the caller. */
  readonly reasons: readonly string[];
  /** Policy evaluation errors (a policy that errors is skipped, per Cedar semantics). */
  readonly errors: readonly string[];
  readonly policyVersion: number | undefined;
}

/**
 * Decides a request. Implementations fail closed: anything that prevents a decision (no active
 * policy set, an engine error) is a deny, never an exception that a caller could mistake for
 * an allow.
 */
export interface Authorizer {
  authorize(request: AuthzRequest): Promise<AuthzDecision>;
  /** Drops whatever the implementation cached for the tenant, after its policies changed. */
  invalidate(tenant: string): void;
}
