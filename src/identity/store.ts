export interface TenantRecord {
  readonly name: string;
  readonly trustDomain: string;
  readonly createdAt: string;
}

export interface TenantPage {
  readonly items: readonly TenantRecord[];
  readonly nextCursor: string | undefined;
}

/** Storage for tenants. */
export interface TenantStore {
  /** Returns false when a tenant with that name or trust domain already exists. */
  create(tenant: TenantRecord): Promise<boolean>;
  /** Returns undefined when the tenant does not exist. */
  get(name: string): Promise<TenantRecord | undefined>;
  getByTrustDomain(trustDomain: string): Promise<TenantRecord | undefined>;
  /** Tenants ordered by name, after `after` (exclusive). */
  list(after: string | undefined, limit: number): Promise<TenantPage>;
}

export interface TokenRecord {
  readonly accessor: string;
  readonly tenant: string;
  readonly secretHash: string;
  readonly policies: readonly string[];
  readonly displayName: string;
  readonly createdBy: string | null;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

/** Storage for bearer tokens. Only the hash of a token's secret part is ever stored. */
export interface TokenStore {
  insert(token: TokenRecord): Promise<void>;
  /** Returns undefined when no token has that accessor. */
  get(accessor: string): Promise<TokenRecord | undefined>;
  /** Marks the token revoked; returns false when it does not exist in that tenant. */
  revoke(tenant: string, accessor: string, at: string): Promise<boolean>;
}
