import { type Clock, systemClock } from '../core/clock.js';
import type { Principal } from '../identity/principal.js';
import type { AuthzDecision, Authorizer, AuthzRequest } from './authorizer.js';
import { RAMPART_POLICY_STORE, actionUid, roleUid, tenantUid } from './entities.js';
import type { EntityJson, PolicyEvaluator, PreparedPolicySet } from './evaluator.js';
import { readsContext } from './policy-set.js';
import type { PolicyStore, PolicyVersionRecord } from './store.js';
import { VAULT_PATH_TYPE, vaultPathAttributes } from './vault-path.js';

interface LoadedPolicySet {
  readonly version: number;
  /** Tenant, version and content hash: what a cached decision was made under. */
  readonly id: string;
  readonly prepared: PreparedPolicySet;
  readonly cacheable: boolean;
}

/** Decisions kept per process; the oldest is dropped first. */
const DECISION_CACHE_SIZE = 10_000;

export interface CedarAuthorizerOptions {
  readonly policies: Pick<PolicyStore, 'active'>;
  /**
   * Parses and evaluates the policy sets. {@link CedarWasmEvaluator} keeps a bounded number of
   * sets parsed inside cedar-wasm (which cannot free one) and reuses the slot of the least
   * recently used, so superseded versions do not accumulate in Wasm memory.
   */
  readonly evaluator: PolicyEvaluator;
  /** Also told of every invalidation: the decision API's own caches (src/authz/decisions.ts). */
  readonly onInvalidate?: (tenant: string) => void;
  /**
   * How long a loaded policy set is used before the store is read again (ms; default 1,000;
   * `Infinity` never): bounds how long a change acknowledged by another replica goes unseen here.
   * An unchanged version keeps its prepared set.
   */
  readonly maxAgeMs?: number;
  readonly clock?: Clock;
}

/**
 * The reference authorizer: the addressed tenant's active `rampart` policy set, evaluated by the
 * {@link PolicyEvaluator} (cedar-wasm).
 *
 * Policy sets are prepared once per version and kept until {@link invalidate} (or, for changes
 * made through another replica, until `maxAgeMs` has passed and the store shows a new version). Decisions are
 * cached when the policy set never reads the request context: the entities are then a pure
 * function of the cache key (principal, its tenant, roles and authentication method; action;
 * resource; tenant), and the key includes the policy set's content hash, so a cached decision
 * cannot outlive the version that made it.
 */
export class CedarAuthorizer implements Authorizer {
  readonly #policies: Pick<PolicyStore, 'active'>;
  readonly #evaluator: PolicyEvaluator;
  readonly #onInvalidate: ((tenant: string) => void) | undefined;
  readonly #loaded = new Map<string, { readonly pending: Promise<LoadedPolicySet | undefined>; readonly readAt: number }>();
  readonly #maxAgeMs: number;
  readonly #clock: Clock;
  readonly #decisions = new Map<string, AuthzDecision>();

  constructor(options: CedarAuthorizerOptions) {
    this.#policies = options.policies;
    this.#evaluator = options.evaluator;
    this.#onInvalidate = options.onInvalidate;
    this.#maxAgeMs = options.maxAgeMs ?? 1000;
    this.#clock = options.clock ?? systemClock;
  }

  invalidate(tenant: string): void {
    this.#loaded.delete(tenant);
    this.#decisions.clear();
    this.#onInvalidate?.(tenant);
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

    let result;
    try {
      result = this.#evaluator.isAuthorized(loaded.prepared, {
        principal: { type: request.principal.type, id: request.principal.id },
        action: actionUid(request.action),
        resource: request.resource,
        context: request.context,
        entities: entitiesFor(request),
      });
    } catch (err) {
      return deny([(err as Error).message], loaded.version);
    }
    const decided: AuthzDecision = {
      decision: result.decision,
      reasons: result.reasons,
      errors: result.errors.map((e) => `${e.policyId}: ${e.message}`),
      policyVersion: loaded.version,
    };
    if (key !== undefined) {
      if (this.#decisions.size >= DECISION_CACHE_SIZE) this.#decisions.delete(this.#decisions.keys().next().value!);
      this.#decisions.set(key, decided);
    }
    return decided;
  }

  #load(tenant: string): Promise<LoadedPolicySet | undefined> {
    const now = this.#clock.now().getTime();
    const known = this.#loaded.get(tenant);
    if (known && (this.#maxAgeMs === Infinity || now - known.readAt < this.#maxAgeMs)) return known.pending;
    const pending = this.#read(tenant, known?.pending);
    this.#loaded.set(tenant, { pending, readAt: now });
    return pending;
  }

  /** The active set; the previously loaded one, prepared already, when the version did not change. */
  async #read(tenant: string, previous: Promise<LoadedPolicySet | undefined> | undefined): Promise<LoadedPolicySet | undefined> {
    const record = await this.#policies.active(tenant, RAMPART_POLICY_STORE);
    if (!record) return undefined;
    const before = await previous?.catch(() => undefined);
    return before && before.id === policySetId(record) ? before : this.#prepare(record);
  }

  async #prepare(record: PolicyVersionRecord): Promise<LoadedPolicySet> {
    let prepared: PreparedPolicySet;
    try {
      prepared = await this.#evaluator.prepare({ policies: record.policies });
    } catch (err) {
      throw new Error(`active policy version ${record.version} does not parse: ${(err as Error).message}`, { cause: err });
    }
    return {
      version: record.version,
      id: policySetId(record),
      prepared,
      cacheable: !readsContext(record.policies),
    };
  }
}

const policySetId = (r: PolicyVersionRecord): string => `${r.tenant}/${r.store}/${r.version}/${r.hash}`;

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

function principalEntity(p: Principal): EntityJson {
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
function entitiesFor(request: AuthzRequest): EntityJson[] {
  const { principal, resource, tenant } = request;
  const entities = new Map<string, EntityJson>();
  const add = (e: EntityJson) => {
    const k = `${e.uid.type}::${e.uid.id}`;
    if (!entities.has(k)) entities.set(k, e);
  };
  add(principalEntity(principal));
  // Roles are named per tenant; as a resource (`token:grant-role`) a role belongs to the tenant addressed.
  for (const r of principal.roles) add({ uid: roleUid(r), attrs: { tenant }, parents: [] });
  const tenantEntity = tenantUid(tenant);
  const resourceIsTenant = resource.type === tenantEntity.type && resource.id === tenantEntity.id;
  const resourceAttrs: Record<string, string> =
    resource.type === SPIFFE_ID_TYPE
      ? { tenant, spiffe_id: resource.id }
      : resource.type === VAULT_PATH_TYPE
        ? { ...vaultPathAttributes(resource.id), tenant }
        : { tenant };
  add({ uid: resource, attrs: resourceAttrs, parents: resourceIsTenant ? [] : [tenantEntity] });
  add({ uid: tenantEntity, attrs: { tenant }, parents: [] });
  return [...entities.values()];
}
