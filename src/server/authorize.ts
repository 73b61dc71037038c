import type { FastifyRequest } from 'fastify';
import type { AuthzDecision, Authorizer } from '../authz/authorizer.js';
import type { Clock } from '../core/clock.js';
import { AuthzError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import type { EntityRef } from '../audit/event.js';
import type { Metrics } from './metrics.js';

export interface AuthorizeInput {
  readonly principal: Principal;
  readonly tenant: string;
  readonly action: string;
  readonly resource: EntityRef;
}

/**
 * Asks the authorizer and throws `authz.denied` unless the answer is allow. The caller learns
 * only that it was denied; which policy decided (or that evaluation failed) goes to the server
 * log and the audit event, never into the response.
 */
export interface AuthorizeDeps {
  readonly authorizer: Authorizer;
  readonly clock: Clock;
  readonly metrics: Metrics;
}

export async function authorizeRequest(deps: AuthorizeDeps, req: FastifyRequest, input: AuthorizeInput): Promise<AuthzDecision> {
  const { authorizer, clock, metrics } = deps;
  const decision = await authorizer.authorize({
    tenant: input.tenant,
    principal: input.principal,
    action: input.action,
    resource: input.resource,
    context: {
      tenant: input.tenant,
      source_ip: req.ip,
      mtls: input.principal.authMethod === 'mtls',
      request_time: Math.floor(clock.now().getTime() / 1000),
    },
  });
  metrics.authzDecisions.inc({ decision: decision.decision });
  // The request's audit event records the last decision: for a denial, the one that refused it.
  req.rampart.decision = { action: input.action, decision };
  if (decision.decision !== 'allow') {
    req.log.info({ action: input.action, reasons: decision.reasons, errors: decision.errors, policy_version: decision.policyVersion }, 'request denied');
    throw new AuthzError(decision.errors.length > 0 && decision.reasons.length === 0 ? 'authz.evaluation_failed' : 'authz.denied', 'access denied');
  }
  return decision;
}
