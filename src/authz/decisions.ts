import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from '../core/clock.js';
import { AuthzError } from '../core/errors.js';
import { DecisionCache } from './decision-cache.js';
import type { CedarValue, DenyKind, EntityJson, EntityUid, PolicyEvaluator, PreparedPolicySet } from './evaluator.js';
import { uidKey, schemaActions } from './schema-actions.js';
import type { EntityStore, PolicyStore } from './store.js';

/**
 * A decision request against an application policy store, as Cedar models one
 * (https://docs.cedarpolicy.com/auth/authorization.html#request): principal, action, resource,
 * context, and entities passed inline that extend or replace the store's entities.
 */
export interface CheckRequest {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context?: { readonly [key: string]: CedarValue };
  readonly entities?: readonly EntityJson[];
}

export interface Decision {
  readonly decision: 'allow' | 'deny';
  /** The determining policies (Cedar's `reason`). Logged; shown only to callers allowed to check. */
  readonly reasons: readonly string[];
  /** Policies skipped because their evaluation raised an error, as `<policy id>: <message>`. */
  readonly errors: readonly string[];
  readonly denyKind: DenyKind | undefined;
  readonly policyVersion: number;
  readonly entityRevision: number;
  /** Fresh for every decision, cached or not: it names this answer in the decision log. */
  readonly decisionId: string;
}

/** What a store's active state is: the policy version and entities decisions are made against. */
export interface ActiveBundle {
  readonly tenant: string;
  readonly store: string;
  readonly version: number;
  readonly hash: string;
  readonly policies: Readonly<Record<string, string>>;
  readonly schema: string | null;
  readonly entityRevision: number;
  readonly entities: readonly EntityJson[];
}

interface ActiveState {
  readonly bundle: ActiveBundle;
  readonly prepared: PreparedPolicySet;
  /** Declared actions; undefined when the store has no schema (then any action may be asked). */
  readonly actions: ReadonlySet<string> | undefined;
  readonly entities: ReadonlyMap<string, EntityJson>;
}

type CachedDecision = Omit<Decision, 'decisionId'>;

/** A store's state being loaded, and once loaded the state itself, for the synchronous fast path. */
interface Loading {
  readonly pending: Promise<ActiveState>;
  ready: ActiveState | undefined;
  /** When the store was read (ms): the state is at least this fresh. */
  readonly readAt: number;
}

export interface DecisionServiceOptions {
  readonly policies: Pick<PolicyStore, 'active'>;
  readonly evaluator: PolicyEvaluator;
  /** The stores' entities; decisions only read them (the policy lifecycle writes them). */
  readonly entities: Pick<EntityStore, 'entities'>;
  /** Decisions cached across all tenants; 0 disables the cache. Default 100,000. */
  readonly cacheSize?: number;
  /**
   * How long a loaded state is used before the store is read again to check it (ms; default
   * 1,000; `Infinity` never). Changes made through this process invalidate at once; this bounds
   * how long a change made through another replica goes unseen. An unchanged version and entity
   * revision keep their prepared set and cached decisions.
   */
  readonly maxAgeMs?: number;
  readonly clock?: Clock;
}

const DEFAULT_CACHE_SIZE = 100_000;
const DEFAULT_MAX_AGE_MS = 1000;
/**
 * Tenants whose loaded stores are kept; beyond it the tenant loaded least recently is forgotten
 * (and simply loaded again on its next request), so memory does not grow with the tenant count.
 */
const MAX_LOADED_TENANTS = 1024;

/**
 * Decides requests against a tenant's application policy stores: the active policy version,
 * prepared once by the {@link PolicyEvaluator}, and the store's entities merged with the ones the
 * request brings.
 *
 * Freshness: each store's active state is loaded once and kept until {@link invalidate}, which the
 * policy lifecycle calls after every committed activation, rollback or entity change and before
 * acknowledging it. `invalidate` synchronously forgets the loaded states and cached decisions of
 * the tenant, so every request that starts after the acknowledgement reads the store again; a
 * request already in flight finishes against the state it started with, which is the state that
 * was live when it was asked. Invalidation reaches this process only: a change acknowledged by
 * another replica is seen here once the loaded state is older than `maxAgeMs` and is read again.
 */
export class DecisionService {
  readonly #policies: Pick<PolicyStore, 'active'>;
  readonly #entities: Pick<EntityStore, 'entities'>;
  readonly #evaluator: PolicyEvaluator;
  readonly #cache: DecisionCache<CachedDecision> | undefined;
  readonly #states = new Map<string, Map<string, Loading>>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #maxAgeMs: number;
  readonly #clock: Clock;

  /** The engine decisions are made with; a preview prepares its candidate with the same one. */
  get evaluator(): PolicyEvaluator {
    return this.#evaluator;
  }

  constructor(options: DecisionServiceOptions) {
    this.#policies = options.policies;
    this.#entities = options.entities;
    this.#evaluator = options.evaluator;
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.#cache = size > 0 ? new DecisionCache(size) : undefined;
    this.#maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Decides one request. Throws `authz.store_empty` when the store has no active version,
   * `authz.action_unknown` when the store's schema declares no such action, and
   * `authz.request_invalid` when the request's entities or context cannot be evaluated (malformed,
   * or not conforming to the schema): none of those is a decision.
   */
  check(tenant: string, store: string, request: CheckRequest): Promise<Decision> {
    // A loaded store is decided without waiting for its load again: one microtask, not three.
    const known = this.#states.get(tenant)?.get(store);
    const ready = known && !this.#stale(known) ? known.ready : undefined;
    if (!ready) return this.#load(tenant, store).then((state) => this.#decide(tenant, store, state, request));
    try {
      return Promise.resolve(this.#decide(tenant, store, ready, request));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Decides several requests against one and the same active state. Throws as {@link check} does
   * for the first request that is not decidable, naming its position (from 1); none is decided then.
   */
  async checkMany(tenant: string, store: string, requests: readonly CheckRequest[]): Promise<Decision[]> {
    const state = await this.#load(tenant, store);
    if (requests.length === 1) return [this.#decide(tenant, store, state, requests[0]!)];
    return requests.map((r, i) => {
      try {
        return this.#decide(tenant, store, state, r);
      } catch (err) {
        if (err instanceof AuthzError && (err.code === 'authz.action_unknown' || err.code === 'authz.request_invalid')) {
          throw new AuthzError(err.code, `request ${i + 1}: ${err.message}`, { cause: err, ...(err.details ? { details: err.details } : {}) });
        }
        throw err;
      }
    });
  }

  /** The store's active policies, schema and entities. Throws `authz.store_empty` without an active version. */
  async bundle(tenant: string, store: string): Promise<ActiveBundle> {
    return (await this.#load(tenant, store)).bundle;
  }

  /** Forgets the tenant's loaded stores and cached decisions, and wakes whoever waits for a change. */
  invalidate(tenant: string): void {
    this.#states.delete(tenant);
    this.#cache?.invalidate(tenant);
    const waiting = this.#waiters.get(tenant);
    if (!waiting) return;
    this.#waiters.delete(tenant);
    for (const wake of waiting) wake();
  }

  /**
   * Resolves true at the tenant's next invalidation, false after `timeoutMs` or when `signal`
   * aborts. For long-polling bundle readers; a real timer, since it bounds how long a connection
   * is held, not a TTL of any state.
   */
  changed(tenant: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    // An aborted signal never fires 'abort' again.
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let waiting = this.#waiters.get(tenant);
      if (!waiting) {
        waiting = new Set();
        this.#waiters.set(tenant, waiting);
      }
      const set = waiting;
      const finish = (changed: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(tenant) === set) this.#waiters.delete(tenant);
        resolve(changed);
      };
      const wake = () => finish(true);
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      timer.unref();
      set.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #decide(tenant: string, store: string, state: ActiveState, request: CheckRequest): Decision {
    if (state.actions && !state.actions.has(uidKey(request.action))) {
      throw new AuthzError('authz.action_unknown', `the schema of policy store "${store}" declares no action ${uidKey(request.action)}`);
    }
    const key = this.#cache ? cacheKey(store, state.bundle, request) : undefined;
    const hit = key === undefined ? undefined : this.#cache!.get(tenant, key);
    if (hit) return { ...hit, decisionId: randomUUID() };
    let result;
    try {
      result = this.#evaluator.isAuthorized(state.prepared, {
        principal: request.principal,
        action: request.action,
        resource: request.resource,
        context: request.context ?? {},
        entities: request.entities && request.entities.length > 0 ? merge(state.entities, state.bundle.entities, request.entities) : state.bundle.entities,
      });
    } catch (err) {
      // The active set prepared fine, so a failure here is the request's: its entities or context.
      if (err instanceof AuthzError && err.code === 'authz.evaluation_failed') {
        throw new AuthzError('authz.request_invalid', err.message, { cause: err, ...(err.details ? { details: err.details } : {}) });
      }
      throw err;
    }
    const decided: CachedDecision = {
      decision: result.decision,
      reasons: result.reasons,
      errors: result.errors.map((e) => `${e.policyId}: ${e.message}`),
      denyKind: result.denyKind,
      policyVersion: state.bundle.version,
      entityRevision: state.bundle.entityRevision,
    };
    if (key !== undefined) this.#cache!.set(tenant, key, decided);
    return { ...decided, decisionId: randomUUID() };
  }

  #load(tenant: string, store: string): Promise<ActiveState> {
    let stores = this.#states.get(tenant);
    if (!stores) {
      if (this.#states.size >= MAX_LOADED_TENANTS) this.#states.delete(this.#states.keys().next().value!);
      stores = new Map();
      this.#states.set(tenant, stores);
    }
    const known = stores.get(store);
    if (known && !(known.ready && this.#stale(known))) return known.pending;
    const loading: Loading = { pending: this.#read(tenant, store, known?.ready), ready: undefined, readAt: this.#clock.now().getTime() };
    stores.set(store, loading);
    const current = () => this.#states.get(tenant)?.get(store) === loading;
    loading.pending.then(
      (state) => {
        // Only a load that no invalidation overtook may serve later requests.
        if (current()) loading.ready = state;
      },
      () => {
        // A failed load is not kept: the next request tries again.
        if (current()) this.#states.get(tenant)!.delete(store);
      },
    );
    return loading.pending;
  }

  #stale(loading: Loading): boolean {
    return this.#maxAgeMs !== Infinity && this.#clock.now().getTime() - loading.readAt >= this.#maxAgeMs;
  }

  /** Reads the store's active state; `previous` is kept, prepared set and all, when nothing changed. */
  async #read(tenant: string, store: string, previous?: ActiveState): Promise<ActiveState> {
    const [record, stored] = await Promise.all([
      this.#policies.active(tenant, store),
      this.#entities.entities(tenant, store),
    ]);
    if (!record) throw new AuthzError('authz.store_empty', `policy store "${store}" has no active policy version`);
    const b = previous?.bundle;
    if (b && b.version === record.version && b.hash === record.hash && b.entityRevision === stored.revision) return previous;
    const prepared = await this.#evaluator.prepare({ policies: record.policies, ...(record.schema === null ? {} : { schema: record.schema }) });
    const entities = new Map<string, EntityJson>();
    for (const e of stored.entities) entities.set(uidKey(e.uid), e);
    return {
      bundle: {
        tenant,
        store,
        version: record.version,
        hash: record.hash,
        policies: record.policies,
        schema: record.schema,
        entityRevision: stored.revision,
        entities: stored.entities,
      },
      prepared,
      actions: record.schema === null ? undefined : schemaActions(record.schema),
      entities,
    };
  }
}

/**
 * Inline entities replace stored ones with the same uid and add the rest (Cedar refuses
 * duplicates). Most requests bring entities the store does not hold (the principal, the
 * resource), so the stored list is only filtered when an inline entity overlaps it.
 */
function merge(stored: ReadonlyMap<string, EntityJson>, storedList: readonly EntityJson[], inline: readonly EntityJson[]): EntityJson[] {
  const replaced = new Set<EntityJson>();
  for (const e of inline) {
    const old = stored.get(uidKey(e.uid));
    if (old) replaced.add(old);
  }
  const kept = replaced.size === 0 ? storedList : storedList.filter((e) => !replaced.has(e));
  return [...kept, ...inline];
}

/**
 * The whole request, with the store, policy version and entity revision it was decided under
 * (the cache is partitioned by tenant, and a version number names one content within a store).
 * A request carrying a bigint (a Long beyond 2^53) is simply not cached.
 */
function cacheKey(store: string, b: ActiveBundle, r: CheckRequest): string | undefined {
  try {
    return JSON.stringify([store, b.version, b.entityRevision, r.principal, r.action, r.resource, r.context ?? {}, r.entities ?? []]);
  } catch {
    return undefined;
  }
}
