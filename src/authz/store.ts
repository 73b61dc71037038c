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
}

/** Storage for versioned Cedar policy sets, per tenant and policy store. */
export interface PolicyStore {
  /** Returns undefined when the tenant's store has no active version. */
  active(tenant: string, store: string): Promise<PolicyVersionRecord | undefined>;
  /** Inserts a version; when it is active, the previous active version becomes superseded. */
  insert(record: PolicyVersionRecord): Promise<void>;
  latestVersion(tenant: string, store: string): Promise<number>;
}
