import { cedar } from './cedar-wasm.js';
import type { Principal } from '../identity/principal.js';
import type { AuthzDecision, Authorizer, AuthzRequest } from './authorizer.js';
import { type EntityUid, RAMPART_POLICY_STORE, actionUid, roleUid, tenantUid } from './entities.js';
import { policiesById, readsContext } from './policy-set.js';
import type { PolicyStore, PolicyVersionRecord } from './store.js';

interface LoadedPolicySet {
  readonly version: number;
  readonly id: string;
  readonly cacheable: boolean;
}

/** Decisions kept per process; the oldest is dropped first. */
const DECISION_CACHE_SIZE = 10_000;

/**
 * The reference authorizer: `@cedar-policy/cedar-wasm`, evaluating the addressed tenant's active
 * `rampart` policy set.
 *
 * Policy sets are parsed once per version with `preparsePolicySet` and evaluated with
 * `statefulIsAuthorized`; the preparsed id includes the content hash, so a new version can never
 * be served from a stale parse. Decisions are cached when the policy set never reads the request
 * context: the entities are then a pure function of the cache key (principal, its tenant, roles
 * and authentication method; action; resource; tenant), and the key includes the policy set's
 * content hash, so a cached decision cannot outlive the version that made it.
 */
export class CedarAuthorizer implements Authorizer {
  readonly #policies: PolicyStore;
  readonly #loaded = new Map<string, Promise<LoadedPolicySet | undefined>>();
  readonly #decisions = new Map<string, AuthzDecision>();

  constructor(policies: PolicyStore) {
    this.#policies = policies;
  }

  invalidate(tenant: string): void {
    this.#loaded.delete(tenant);
    this.#decisions.clear();
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

    const key = loaded.cacheable ? cacheKey(loaded.id, request) : undefined;
    const cached = key === undefined ? undefined : this.#decisions.get(key);
    if (cached) return cached;

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
    const result: AuthzDecision = {
      decision: decision === 'allow' ? 'allow' : 'deny',
      reasons: diagnostics.reason,
      errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
      policyVersion: loaded.version,
    };
    if (key !== undefined) {
      if (this.#decisions.size >= DECISION_CACHE_SIZE) this.#decisions.delete(this.#decisions.keys().next().value!);
      this.#decisions.set(key, result);
    }
    return result;
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
  const staticPolicies = policiesById(record.policies);
  const parsed = cedar.preparsePolicySet(id, { staticPolicies });
  if (parsed.type === 'failure') {
    throw new Error(`active policy version ${record.version} does not parse: ${parsed.errors.map((e) => e.message).join('; ')}`);
  }
  return { version: record.version, id, cacheable: !readsContext(staticPolicies) };
}

function cacheKey(policySetId: string, r: AuthzRequest): string {
  const p = r.principal;
  return JSON.stringify([policySetId, r.tenant, p.type, p.id, p.tenant, p.authMethod, p.roles, r.action, r.resource.type, r.resource.id]);
}

function deny(errors: string[], policyVersion: number | undefined): AuthzDecision {
  return { decision: 'deny', reasons: [], errors, policyVersion };
}

/**
 * Cedar cannot compare entity ids, so the SPIFFE ID is also an attribute: of a workload principal
 * (its id is its SPIFFE ID) and of a `Rampart::SpiffeId` resource. A policy can then say "a
 * workload may obtain its own identity" as `resource.spiffe_id == principal.spiffe_id`. Both
 * attributes are functions of the entity ids already in the decision cache key.
 */
const WORKLOAD_TYPE = 'Rampart::Workload';
const SPIFFE_ID_TYPE = 'Rampart::SpiffeId';

function principalEntity(p: Principal): cedar.EntityJson {
  return {
    uid: { type: p.type, id: p.id },
    attrs: { tenant: p.tenant, auth_method: p.authMethod, ...(p.type === WORKLOAD_TYPE ? { spiffe_id: p.id } : {}) },
    parents: p.roles.map(roleUid),
  };
}

/**
 * The entities of one request. Cedar refuses a request whose entity list names one entity twice,
 * and a resource may well be the principal itself (a token looking itself up) or one of its
 * roles (granting a role one holds), so the principal's view of an entity wins and the resource
 * is added only when it is not already there.
 */
function entitiesFor(request: AuthzRequest): cedar.EntityJson[] {
  const { principal, resource, tenant } = request;
  const entities = new Map<string, cedar.EntityJson>();
  const add = (e: cedar.EntityJson & { uid: EntityUid }) => {
    const k = `${e.uid.type}::${e.uid.id}`;
    if (!entities.has(k)) entities.set(k, e);
  };
  add(principalEntity(principal) as cedar.EntityJson & { uid: EntityUid });
  // Roles are named per tenant; as a resource (`token:grant-role`) a role belongs to the tenant addressed.
  for (const r of principal.roles) add({ uid: roleUid(r), attrs: { tenant }, parents: [] });
  const tenantEntity = tenantUid(tenant);
  const resourceIsTenant = resource.type === tenantEntity.type && resource.id === tenantEntity.id;
  const resourceAttrs: Record<string, string> = resource.type === SPIFFE_ID_TYPE ? { tenant, spiffe_id: resource.id } : { tenant };
  add({ uid: resource, attrs: resourceAttrs, parents: resourceIsTenant ? [] : [tenantEntity] });
  add({ uid: tenantEntity, attrs: { tenant }, parents: [] });
  return [...entities.values()];
}
