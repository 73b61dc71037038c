/**
 * Local policy evaluation for services: the tenant's active bundle of one policy store, evaluated
 * in-process by the same engine and decision code the server uses, kept current by long-polling
 * the server for the next version.
 */
import { CedarWasmEvaluator } from '../authz/cedar-wasm-evaluator.js';
import { type CheckRequest, type Decision, DecisionService } from '../authz/decisions.js';
import type { EntityJson } from '../authz/evaluator.js';
import type { PolicyVersionRecord } from '../authz/store.js';
import type { RampartClient } from './client.js';

/**
 * A policy store's active bundle as `GET /v1/authz/stores/{store}/bundle` returns it.
 *
 * @example
 * ```ts
 * const b = await client.request<PolicyBundle>('GET', '/v1/authz/stores/app/bundle');
 * console.log(b.version, Object.keys(b.policies));
 * ```
 */
export interface PolicyBundle {
  store: string;
  version: number;
  hash: string;
  policies: Record<string, string>;
  schema: string | null;
  entity_revision: number;
  entities: EntityJson[];
}

/**
 * Options of {@link createAuthorizer}.
 *
 * @example
 * ```ts
 * const options: AuthorizerOptions = { client, store: 'app', onUpdate: (v) => console.log('policy version', v) };
 * ```
 */
export interface AuthorizerOptions {
  /** A client authenticated as a principal allowed `authz:bundle` on the store (a workload of the tenant is, by default). */
  client: RampartClient;
  store: string;
  /** Seconds each long-poll waits for a change before asking again; default 20, at most 60 (keep it under the client's timeout). */
  waitSeconds?: number;
  /** Called after a new version or entity revision was taken up. */
  onUpdate?: (version: number, entityRevision: number) => void;
  /** Called when following the server fails; the authorizer keeps the bundle it has and retries. */
  onError?: (err: unknown) => void;
}

/**
 * Decides locally against the bundle it holds; see {@link createAuthorizer}.
 *
 * @example
 * ```ts
 * const d = await authorizer.authorize({ principal, action, resource, context: {} });
 * if (d.decision !== 'allow') throw new Error(`denied (policy version ${d.policyVersion})`);
 * ```
 */
export interface LocalAuthorizer {
  /** The policy version decisions are made against now. */
  readonly version: number;
  readonly entityRevision: number;
  /**
   * Decides one request, as `POST /v1/authz/stores/{store}/check` would: the same reasons, deny
   * kind and errors, and the version decided against. Rejects (`authz.action_unknown`,
   * `authz.request_invalid`) where the server answers 400: that is no decision; treat it as a deny.
   */
  authorize(request: CheckRequest): Promise<Decision>;
  /** Resolves once the authorizer holds `version` or a later one. */
  waitForVersion(version: number): Promise<void>;
  /** Stops following the server (the current long-poll is left to finish on its own). */
  close(): void;
}

const LOCAL_TENANT = 'local';
const RETRY_MS = 1000;

/**
 * Pulls the active bundle of `store` in the client's tenant, evaluates in-process, and follows
 * new versions with a long-poll (`GET …/bundle?wait=&version=&revision=`), which the server
 * answers as soon as a version is activated, rolled back or the entities change. Rejects when
 * the first bundle cannot be fetched: without policies there is nothing to decide with.
 *
 * Decisions are cached the way the server caches them (per version, entity revision and full
 * request), and the cache is dropped whenever a new bundle is taken up.
 *
 * @example
 * ```ts
 * import { RampartClient, createAuthorizer } from 'rampart/sdk';
 *
 * const authorizer = await createAuthorizer({ client: new RampartClient({ addr, token, caPem }), store: 'app' });
 * const d = await authorizer.authorize({
 *   principal: { type: 'User', id: 'alice' },
 *   action: { type: 'Action', id: 'read' },
 *   resource: { type: 'Doc', id: 'd1' },
 * });
 * console.log(d.decision, d.policyVersion);
 * authorizer.close();
 * ```
 */
export async function createAuthorizer(options: AuthorizerOptions): Promise<LocalAuthorizer> {
  const { client, store } = options;
  const waitSeconds = Math.min(Math.max(1, Math.floor(options.waitSeconds ?? 20)), 60);
  const path = `/v1/authz/stores/${encodeURIComponent(store)}/bundle`;
  let bundle = await client.request<PolicyBundle>('GET', path);
  const held = (): PolicyVersionRecord => ({
    tenant: LOCAL_TENANT,
    store,
    version: bundle.version,
    hash: bundle.hash,
    policies: bundle.policies,
    schema: bundle.schema,
    status: 'active',
    author: '',
    message: '',
    createdAt: '',
  });
  const decisions = new DecisionService({
    policies: { active: async () => held() },
    entities: { entities: async () => ({ revision: bundle.entity_revision, entities: bundle.entities }) },
    evaluator: new CedarWasmEvaluator({ maxResident: 2 }),
    // The held bundle changes only when the long-poll brings a new one, which invalidates.
    maxAgeMs: Infinity,
  });
  // Fail early, as the server would: a bundle the engine cannot prepare is not one to decide with.
  await decisions.bundle(LOCAL_TENANT, store);

  let closed = false;
  let wakeClosed: () => void = () => undefined;
  const closing = new Promise<void>((resolve) => (wakeClosed = resolve));
  const versionWaiters = new Set<{ version: number; resolve: () => void }>();
  const take = (next: PolicyBundle) => {
    if (next.version === bundle.version && next.entity_revision === bundle.entity_revision && next.hash === bundle.hash) return;
    bundle = next;
    decisions.invalidate(LOCAL_TENANT);
    for (const w of versionWaiters) {
      if (bundle.version >= w.version) {
        versionWaiters.delete(w);
        w.resolve();
      }
    }
    options.onUpdate?.(bundle.version, bundle.entity_revision);
  };

  void (async () => {
    while (!closed) {
      try {
        const next = await client.request<PolicyBundle>('GET', path, {
          query: { wait: waitSeconds, version: bundle.version, revision: bundle.entity_revision },
        });
        if (!closed) take(next);
      } catch (err) {
        if (closed) return;
        options.onError?.(err);
        await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref())]);
      }
    }
  })();

  return {
    get version() {
      return bundle.version;
    },
    get entityRevision() {
      return bundle.entity_revision;
    },
    authorize: (request) => decisions.check(LOCAL_TENANT, store, request),
    waitForVersion: (version) =>
      bundle.version >= version ? Promise.resolve() : new Promise<void>((resolve) => versionWaiters.add({ version, resolve })),
    close() {
      closed = true;
      wakeClosed();
    },
  };
}
