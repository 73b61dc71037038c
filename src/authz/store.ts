import type { EntityJson } from './evaluator.js';

export type PolicyVersionStatus = 'active' | 'superseded' | 'rejected';

export interface PolicyVersionRecord {
  readonly tenant: string;
  readonly store: string;
  readonly version: number;
  /** SHA-256 over the canonical JSON of policies and schema, hex. */
  readonly hash: string;
  /** File name → Cedar policy text. */
  readonly policies: Readonly<Record<string, string>>;
  readonly schema: string | null;
  readonly status: PolicyVersionStatus;
  readonly author: string;
  readonly message: string;
  readonly createdAt: string;
  /** The store's policy tests (file name → YAML), kept with the version they were run against. */
  readonly tests?: Readonly<Record<string, string>>;
  /** Why a `rejected` version was refused, one line per problem; absent for any other status. */
  readonly reasons?: readonly string[];
}

/** A version without its content, as version lists show it. */
export type PolicyVersionSummary = Omit<PolicyVersionRecord, 'policies' | 'schema' | 'tests'>;

/** A policy store of a tenant, as `GET /v1/authz/stores` lists it. */
export interface PolicyStoreSummary {
  readonly store: string;
  /** The active version; undefined when every version so far was rejected. */
  readonly activeVersion: number | undefined;
  readonly latestVersion: number;
}

/**
 * Storage for versioned Cedar policy sets, per tenant and policy store. Bound as
 * `stores.policies` (src/store/stores.ts).
 */
export interface PolicyStore {
  /** Returns undefined when the tenant's store has no active version. */
  active(tenant: string, store: string): Promise<PolicyVersionRecord | undefined>;
  /** Inserts a version; when it is active, the previous active version becomes superseded. */
  insert(record: PolicyVersionRecord): Promise<void>;
  latestVersion(tenant: string, store: string): Promise<number>;
  /**
   * The number the store's next version gets, for use in the caller's transaction: concurrent
   * changes to one store wait for each other here (PostgreSQL locks the active version's row), so
   * they take consecutive numbers instead of racing for one.
   */
  nextVersion(tenant: string, store: string): Promise<number>;
  /** Returns undefined when the store has no such version. */
  get(tenant: string, store: string, version: number): Promise<PolicyVersionRecord | undefined>;
  /** Versions newest first, `limit` at most, older than `before` when given. */
  versions(tenant: string, store: string, page: { limit: number; before: number | undefined }): Promise<PolicyVersionSummary[]>;
  /** The tenant's policy stores by name, `limit` at most, after `after` when given. */
  stores(tenant: string, page: { limit: number; after: string | undefined }): Promise<PolicyStoreSummary[]>;
}

/** A Cedar entity in Cedar's JSON entity format (https://docs.cedarpolicy.com/auth/entities-syntax.html). */
export type CedarEntityJson = EntityJson;

/** The entity store of one policy store at one revision. */
export interface EntitySnapshot {
  /** 0 before the first write; incremented by every replacement, so it keys caches. */
  readonly revision: number;
  readonly entities: readonly CedarEntityJson[];
}

/**
 * The entity store of each policy store (users, groups, roles, workloads, resources with
 * attributes and parents). Bound as `stores.entities` (src/store/stores.ts). Entities are
 * replaced as a whole (`PUT …/entities`), as a policy version is: there is no partial update
 * that could leave a half-applied hierarchy.
 */
export interface EntityStore {
  /** Revision 0 and no entities when the store's entities were never set. */
  entities(tenant: string, store: string): Promise<EntitySnapshot>;
  /**
   * Replaces the entities and returns the new revision. Runs in the caller's transaction (or one
   * of its own); two concurrent replacements cannot both claim one revision.
   */
  replace(tenant: string, store: string, entities: readonly CedarEntityJson[], updatedAt: string): Promise<number>;
}
