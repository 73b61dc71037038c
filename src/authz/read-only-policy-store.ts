import type { PolicyStore, PolicyStoreSummary, PolicyVersionRecord, PolicyVersionSummary } from './store.js';

/**
 * A policy store holding exactly one version, as its active one, in memory and read-only: how a
 * candidate version is evaluated by the request path's authorizer before it is stored
 * (lockout protection, src/authz/lockout.ts).
 */
export class ReadOnlyPolicyStore implements PolicyStore {
  readonly #record: PolicyVersionRecord;

  constructor(record: PolicyVersionRecord) {
    this.#record = { ...record, status: 'active' };
  }

  #holds(tenant: string, store: string): boolean {
    return tenant === this.#record.tenant && store === this.#record.store;
  }

  async active(tenant: string, store: string): Promise<PolicyVersionRecord | undefined> {
    return this.#holds(tenant, store) ? this.#record : undefined;
  }

  async get(tenant: string, store: string, version: number): Promise<PolicyVersionRecord | undefined> {
    return this.#holds(tenant, store) && version === this.#record.version ? this.#record : undefined;
  }

  async latestVersion(tenant: string, store: string): Promise<number> {
    return this.#holds(tenant, store) ? this.#record.version : 0;
  }

  async nextVersion(tenant: string, store: string): Promise<number> {
    return (await this.latestVersion(tenant, store)) + 1;
  }

  async versions(tenant: string, store: string, page: { limit: number; before: number | undefined }): Promise<PolicyVersionSummary[]> {
    const { policies: _p, schema: _s, tests: _t, ...summary } = this.#record;
    const visible = this.#holds(tenant, store) && (page.before === undefined || summary.version < page.before) && page.limit > 0;
    return visible ? [summary] : [];
  }

  async stores(tenant: string, page: { limit: number; after: string | undefined }): Promise<PolicyStoreSummary[]> {
    const { store, version } = this.#record;
    const visible = tenant === this.#record.tenant && (page.after === undefined || store > page.after) && page.limit > 0;
    return visible ? [{ store, activeVersion: version, latestVersion: version }] : [];
  }

  async insert(): Promise<void> {
    throw new Error('a read-only policy store takes no versions');
  }
}
