import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Principal } from '../identity/principal.js';
import type { AuthzDecision, Authorizer, AuthzRequest } from './authorizer.js';
import { RAMPART_POLICY_STORE, actionUid, roleUid, tenantUid } from './entities.js';
import type { PolicyStore, PolicyVersionRecord } from './store.js';

interface LoadedPolicySet {
  readonly version: number;
  readonly id: string;
}

/**
 * The reference authorizer: `@cedar-policy/cedar-wasm`, evaluating the addressed tenant's active
 * `rampart` policy set.
 *
 * Policy sets are parsed once per version with `preparsePolicySet` and evaluated with
 * `statefulIsAuthorized`; the preparsed id includes the content hash, so a new version can never
 * be served from a stale parse.
 */
export class CedarAuthorizer implements Authorizer {
  readonly #policies: PolicyStore;
  readonly #loaded = new Map<string, Promise<LoadedPolicySet | undefined>>();

  constructor(policies: PolicyStore) {
    this.#policies = policies;
  }

  invalidate(tenant: string): void {
    this.#loaded.delete(tenant);
  }

  async authorize(request: AuthzRequest): Promise<AuthzDecision> {
    let loaded: LoadedPolicySet | undefined;
    try {
      loaded = await this.#load(request.tenant);
    } catch (err) {
      this.#loaded.delete(request.tenant);
      return deny([`policy set could not be loaded: ${(err as Error).message}`], undefined);
    }
    if (!loaded) return deny(['no active policy set'], undefined);

    const answer = cedar.statefulIsAuthorized({
      principal: { type: request.principal.type, id: request.principal.id },
      action: actionUid(request.action),
      resource: request.resource,
      context: request.context,
      preparsedPolicySetId: loaded.id,
      entities: entitiesFor(request),
    });
    if (answer.type === 'failure') return deny(answer.errors.map((e) => e.message), loaded.version);
    const { decision, diagnostics } = answer.response;
    return {
      decision: decision === 'allow' ? 'allow' : 'deny',
      reasons: diagnostics.reason,
      errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
      policyVersion: loaded.version,
    };
  }

  #load(tenant: string): Promise<LoadedPolicySet | undefined> {
    let pending = this.#loaded.get(tenant);
    if (!pending) {
      pending = this.#policies.active(tenant, RAMPART_POLICY_STORE).then((record) => record && preparse(record));
      this.#loaded.set(tenant, pending);
    }
    return pending;
  }
}

function preparse(record: PolicyVersionRecord): LoadedPolicySet {
  const id = `${record.tenant}/${record.store}/${record.version}/${record.hash}`;
  const text = Object.keys(record.policies)
    .sort()
    .map((name) => record.policies[name])
    .join('\n');
  const parsed = cedar.preparsePolicySet(id, { staticPolicies: text });
  if (parsed.type === 'failure') {
    throw new Error(`active policy version ${record.version} does not parse: ${parsed.errors.map((e) => e.message).join('; ')}`);
  }
  return { version: record.version, id };
}

function deny(errors: string[], policyVersion: number | undefined): AuthzDecision {
  return { decision: 'deny', reasons: [], errors, policyVersion };
}

function principalEntity(p: Principal): cedar.EntityJson {
  return {
    uid: { type: p.type, id: p.id },
    attrs: { tenant: p.tenant, auth_method: p.authMethod },
    parents: p.roles.map(roleUid),
  };
}

function entitiesFor(request: AuthzRequest): cedar.EntityJson[] {
  const { principal, resource, tenant } = request;
  return [
    principalEntity(principal),
    ...principal.roles.map((r) => ({ uid: roleUid(r), attrs: {}, parents: [] })),
    { uid: resource, attrs: { tenant }, parents: resource.type === tenantUid(tenant).type ? [] : [tenantUid(tenant)] },
    ...(resource.type === tenantUid(tenant).type ? [] : [{ uid: tenantUid(tenant), attrs: { tenant }, parents: [] }]),
  ];
}
