/**
 * Lockout protection for the `rampart` store: a version that would leave nobody able to push
 * policies to it again cannot be undone through the API, so it is refused before activation.
 *
 * "Somebody" is decided by the real request path: the candidate is evaluated by the same
 * {@link Authorizer} that guards every API request, for `authz:push` on the tenant's `rampart`
 * store, with the context of the request making the change. The version passes when any probe
 * principal is allowed: the caller itself, or a token of the tenant holding `admin` or any role
 * the candidate's policies name. A policy set that grants policy management only to a
 * principal that does not exist yet therefore fails; that is the point.
 */
import type { Principal } from '../identity/principal.js';
import type { Authorizer, AuthzRequest } from './authorizer.js';
import { RAMPART_POLICY_STORE } from './entities.js';
import { ReadOnlyPolicyStore } from './read-only-policy-store.js';
import type { PolicyStore, PolicyVersionRecord } from './store.js';

/** The action whose loss is a lockout. */
export const MANAGE_POLICIES_ACTION = 'authz:push';

/** The Cedar resource of a tenant's policy store, as the policy routes declare it. */
export const policyStoreResource = (tenant: string, store: string) => ({ type: 'Rampart::PolicyStore', id: `${tenant}/${store}` });

export interface LockoutCheck {
  /** The version about to become active in the tenant's `rampart` store. */
  readonly candidate: PolicyVersionRecord;
  /** Who is making the change; undefined for a change without a caller (none today). */
  readonly caller: Principal | undefined;
  readonly context: AuthzRequest['context'];
  /** An authorizer over the given policy store, as the request path builds one. */
  readonly authorizerFor: (policies: PolicyStore) => Authorizer;
}

/** True when no probe principal could still push to the `rampart` store under the candidate. */
export async function locksOut(check: LockoutCheck): Promise<boolean> {
  const { candidate } = check;
  const tenant = candidate.tenant;
  const authorizer = check.authorizerFor(new ReadOnlyPolicyStore(candidate));
  for (const principal of probes(candidate, check.caller)) {
    const decision = await authorizer.authorize({
      tenant,
      principal,
      action: MANAGE_POLICIES_ACTION,
      resource: policyStoreResource(tenant, RAMPART_POLICY_STORE),
      context: check.context,
    });
    if (decision.decision === 'allow') return false;
  }
  return true;
}

function probes(candidate: PolicyVersionRecord, caller: Principal | undefined): Principal[] {
  const roles = new Set(['admin']);
  for (const text of Object.values(candidate.policies)) {
    for (const m of text.matchAll(/Rampart::Role::"((?:[^"\\]|\\.)*)"/g)) roles.add(JSON.parse(`"${m[1]}"`) as string);
  }
  const tokens = [...roles].map(
    (role): Principal => ({
      type: 'Rampart::Token',
      id: `lockout-probe/${role}`,
      tenant: candidate.tenant,
      roles: [role],
      authMethod: 'token',
      displayName: '',
    }),
  );
  return caller ? [caller, ...tokens] : tokens;
}
