/**
 * Policy stores over the API (docs/authz-policies.md): push, versions, diff, rollback and
 * entities. Functions over a {@link RampartClient}, so the client stays one small class and
 * applications that never manage policies import none of this.
 */
import type { Page, PageOptions, RampartClient } from './client.js';

/** A policy version as version lists show it. */
export interface PolicyVersion {
  readonly version: number;
  /** SHA-256 of the policies and schema, hex. */
  readonly hash: string;
  readonly status: 'active' | 'superseded' | 'rejected';
  /** `Rampart::Token::<accessor>` or `Rampart::Workload::<spiffe id>` of who pushed it. */
  readonly author: string;
  readonly message: string;
  readonly created_at: string;
  /** Why a rejected version was refused, one line per problem (`file:line:column: message`). */
  readonly reasons?: readonly string[];
}

/** One version with its content and its diff against the previous version. */
export interface PolicyVersionDetail extends PolicyVersion {
  readonly policies: Readonly<Record<string, string>>;
  readonly schema: string | null;
  readonly tests: Readonly<Record<string, string>>;
  readonly diff: { readonly against: number | null; readonly files: Readonly<Record<string, string>> };
}

/** What `rampart policy push` sends: policy files, an optional schema and policy tests. */
export interface PolicyPush {
  /** One policy text (stored as `policies.cedar`) or file name → text, names ending in `.cedar`. */
  readonly policies: string | Readonly<Record<string, string>>;
  /** Cedar schema (human-readable syntax). Not for the `rampart` store. */
  readonly schema?: string;
  /** File name (`tests.yaml` or `*.test.yaml`) → policy tests. */
  readonly tests?: Readonly<Record<string, string>>;
  readonly message: string;
}

export interface PolicyStoreInfo {
  readonly store: string;
  readonly active_version: number | null;
  readonly latest_version: number;
}

/** A Cedar entity (https://docs.cedarpolicy.com/auth/entities-syntax.html). */
export interface CedarEntity {
  readonly uid: { readonly type: string; readonly id: string };
  readonly attrs: Readonly<Record<string, unknown>>;
  readonly parents: ReadonlyArray<{ readonly type: string; readonly id: string }>;
  readonly tags?: Readonly<Record<string, unknown>>;
}

const storePath = (store: string) => `/v1/authz/stores/${encodeURIComponent(store)}`;
const pageQuery = (page: PageOptions) => ({ limit: page.limit, cursor: page.cursor });

/**
 * Pushes a new version. It is validated (syntax, strict schema validation, the store's policy
 * tests, lockout protection for `rampart`) and activated, or stored as rejected.
 *
 * @throws {RampartApiError} `authz.policy_parse_failed`, `authz.policy_invalid`,
 * `authz.policy_tests_failed` or `authz.lockout` for a rejected version: `err.problem.version`
 * is its number and `err.problem.errors` the reasons.
 * @example
 * ```ts
 * const v = await pushPolicies(client, 'docs', { policies: { 'main.cedar': text }, message: 'owners read' });
 * ```
 */
export function pushPolicies(client: RampartClient, store: string, push: PolicyPush): Promise<PolicyVersion> {
  return client.request<PolicyVersion>('PUT', `${storePath(store)}/policies`, { body: push });
}

/**
 * Lists a store's versions, newest first.
 *
 * @example
 * ```ts
 * const { items } = await listPolicyVersions(client, 'rampart', { limit: 10 });
 * ```
 */
export function listPolicyVersions(client: RampartClient, store: string, page: PageOptions = {}): Promise<Page<PolicyVersion>> {
  return client.request<Page<PolicyVersion>>('GET', `${storePath(store)}/versions`, { query: pageQuery(page) });
}

/**
 * One version with its content and its diff against the previous version.
 *
 * @example
 * ```ts
 * const v3 = await getPolicyVersion(client, 'docs', 3);
 * ```
 */
export function getPolicyVersion(client: RampartClient, store: string, version: number): Promise<PolicyVersionDetail> {
  return client.request<PolicyVersionDetail>('GET', `${storePath(store)}/versions/${version}`);
}

/**
 * Unified diffs from version `from` to version `to`, per file; unchanged files are left out.
 *
 * @example
 * ```ts
 * const { files } = await diffPolicyVersions(client, 'docs', 3, 5);
 * ```
 */
export function diffPolicyVersions(
  client: RampartClient,
  store: string,
  from: number,
  to: number,
): Promise<{ from: number; to: number; files: Record<string, string> }> {
  return client.request('GET', `${storePath(store)}/diff`, { query: { from, to } });
}

/**
 * Rolls back: a new version whose content equals `version`, judged again as a push is.
 *
 * @example
 * ```ts
 * const v = await rollbackPolicies(client, 'rampart', 3);
 * ```
 */
export function rollbackPolicies(client: RampartClient, store: string, version: number, message?: string): Promise<PolicyVersion> {
  return client.request<PolicyVersion>('POST', `${storePath(store)}/rollback`, { body: { version, ...(message === undefined ? {} : { message }) } });
}

/**
 * Pushes the current seed policies to the tenant's `rampart` store: how a tenant created before
 * a seed policy existed gets it.
 *
 * @example
 * ```ts
 * await reseedRampartPolicies(client, 'bring acme up to date');
 * ```
 */
export function reseedRampartPolicies(client: RampartClient, message?: string): Promise<PolicyVersion> {
  return client.request<PolicyVersion>('POST', `${storePath('rampart')}/reseed`, { body: message === undefined ? {} : { message } });
}

/**
 * Lists the tenant's policy stores.
 *
 * @example
 * ```ts
 * const { items } = await listPolicyStores(client);
 * ```
 */
export function listPolicyStores(client: RampartClient, page: PageOptions = {}): Promise<Page<PolicyStoreInfo>> {
  return client.request<Page<PolicyStoreInfo>>('GET', '/v1/authz/stores', { query: pageQuery(page) });
}

/**
 * Replaces a store's entities; returns the new entity revision.
 *
 * @throws {RampartApiError} `authz.entities_invalid` for unknown types, cycles or malformed entities.
 * @example
 * ```ts
 * await putEntities(client, 'docs', [{ uid: { type: 'User', id: 'alice' }, attrs: {}, parents: [] }]);
 * ```
 */
export function putEntities(client: RampartClient, store: string, entities: readonly CedarEntity[]): Promise<{ revision: number; count: number }> {
  return client.request('PUT', `${storePath(store)}/entities`, { body: entities });
}

/**
 * A store's entities and their revision.
 *
 * @example
 * ```ts
 * const { revision, entities } = await getEntities(client, 'docs');
 * ```
 */
export function getEntities(client: RampartClient, store: string): Promise<{ revision: number; entities: CedarEntity[] }> {
  return client.request('GET', `${storePath(store)}/entities`);
}
