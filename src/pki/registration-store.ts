/** The storage port for registration entries (src/pki/registration.ts). */
export interface RegistrationEntry {
  /** `reg_<random>`, unique across tenants. */
  readonly id: string;
  readonly tenant: string;
  /** The SPIFFE ID a workload matching the selectors receives. */
  readonly spiffeId: string;
  /** Who may obtain it: an agent's SPIFFE ID, or a node selector an agent attested with. */
  readonly parent: string;
  /** Sorted, duplicate-free `<type>:<value>` selectors, all of which a workload must match. */
  readonly selectors: readonly string[];
  readonly dnsNames: readonly string[];
  /** TTL of the SVIDs issued for the entry; null means the server default. */
  readonly ttlMs: number | null;
  readonly createdAt: string;
  /** `<principal type>::<id>` of the creator. */
  readonly createdBy: string;
}

export interface RegistrationStore {
  /** Stores the entry; false when the tenant has one with the same SPIFFE ID, parent and selectors. */
  insert(entry: RegistrationEntry): Promise<boolean>;
  /** The tenant's entry with that id; undefined when the tenant has none (another tenant's is never returned). */
  get(tenant: string, id: string): Promise<RegistrationEntry | undefined>;
  /** The tenant's entries ordered by id, after `cursor` (an id), at most `limit`. */
  list(tenant: string, limit: number, cursor: string | undefined): Promise<RegistrationEntry[]>;
  /** The tenant's entries whose parent is one of `parents`, ordered by id. */
  byParents(tenant: string, parents: readonly string[]): Promise<RegistrationEntry[]>;
  /** Deletes the tenant's entry; false when there was none. */
  delete(tenant: string, id: string): Promise<boolean>;
}
