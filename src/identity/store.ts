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
  /**
   * Vault token semantics (auth/token, docs/secrets.md); absent on tokens made by `POST /v1/tokens`.
   * `parent`: the accessor of the token that created it (revoked with it); absent for orphans.
   */
  readonly parent?: string | undefined;
  /** Seconds: a periodic token renews to now + period, with no max TTL but an explicit one. */
  readonly period?: number | undefined;
  /** The TTL the token was created with, in seconds (renewal's default increment). */
  readonly creationTtl?: number | undefined;
  /** The explicit max TTL's end: no renewal reaches past it. */
  readonly explicitMaxExpiresAt?: string | undefined;
  readonly renewable?: boolean | undefined;
  /** Vault `num_uses`: the uses granted at creation; absent for unlimited tokens. */
  readonly numUses?: number | undefined;
  /** Uses left (spent by {@link TokenStore.spendUse}); present exactly when `numUses` is. */
  readonly usesLeft?: number | undefined;
  /** The token role it was created against (`auth/token/create/<role>`). */
  readonly role?: string | undefined;
  /** Vault's `path`: `auth/token/create`, `auth/token/create/<role>[/<path_suffix>]`, … */
  readonly creationPath?: string | undefined;
  /** Vault `bound_cidrs`: the CIDR blocks the token may be used from (src/identity/cidr.ts); absent: anywhere. */
  readonly boundCidrs?: readonly string[] | undefined;
}

/** Storage for bearer tokens. Only the hash of a token's secret part is ever stored. */
export interface TokenStore {
  insert(token: TokenRecord): Promise<void>;
  /** Returns undefined when no token has that accessor. */
  get(accessor: string): Promise<TokenRecord | undefined>;
  /** Marks the token revoked; returns false when it does not exist in that tenant. */
  revoke(tenant: string, accessor: string, at: string): Promise<boolean>;
  /** Accessors of the tokens the given token created (revoked or not). */
  children(tenant: string, accessor: string): Promise<string[]>;
  /** Moves an unrevoked token's expiry (renewal); returns false when it is revoked or absent. */
  renew(tenant: string, accessor: string, expiresAt: string): Promise<boolean>;
  /**
   * Spends one use of a use-limited token with a single conditional UPDATE (never read, then
   * write), so concurrent requests on any number of replicas can never spend more uses than the
   * token has; the last use also revokes it (at `at`). Returns the uses left after this one, or
   * undefined when the token is unlimited, revoked, absent or already used up.
   */
  spendUse(accessor: string, at: string): Promise<number | undefined>;
}

/** A Vault token role (auth/token/roles/<name>): what tokens created against it may and will be. */
export interface TokenRoleRecord {
  readonly tenant: string;
  readonly name: string;
  /** Policies a token of the role may get (none: the creator's own rules apply). */
  readonly allowedPolicies: readonly string[];
  readonly disallowedPolicies: readonly string[];
  readonly orphan: boolean;
  readonly renewable: boolean;
  readonly pathSuffix: string;
  /** Seconds; 0: unset. */
  readonly tokenPeriod: number;
  readonly tokenExplicitMaxTtl: number;
  /** 0: unlimited. */
  readonly tokenNumUses: number;
  readonly tokenNoDefaultPolicy: boolean;
  readonly updatedAt: string;
  /** Vault `token_bound_cidrs`: given to every token created against the role; empty: none. */
  readonly tokenBoundCidrs: readonly string[];
}

export interface TokenRoleStore {
  /** Returns undefined when the tenant has no role of that name. */
  get(tenant: string, name: string): Promise<TokenRoleRecord | undefined>;
  put(role: TokenRoleRecord): Promise<void>;
  /** Returns false when there was none. */
  delete(tenant: string, name: string): Promise<boolean>;
  /** Role names of the tenant, sorted. */
  list(tenant: string): Promise<string[]>;
}

/** An AppRole role (Vault auth/approle): what a login with its role ID and a secret ID yields. */
export interface AppRoleRecord {
  readonly tenant: string;
  readonly name: string;
  readonly roleId: string;
  readonly policies: readonly string[];
  /** Seconds; 0: secret IDs do not expire. */
  readonly secretIdTtl: number;
  /** 0: unlimited. */
  readonly secretIdNumUses: number;
  readonly tokenTtl: number;
  readonly tokenMaxTtl: number;
  readonly tokenPeriod: number;
  readonly createdAt: string;
  /** Vault `secret_id_bound_cidrs`: the blocks a login with any of the role's secret IDs must come from; empty: anywhere. */
  readonly secretIdBoundCidrs: readonly string[];
  /** Vault `token_bound_cidrs`: given to every token the role's logins create; empty: none. */
  readonly tokenBoundCidrs: readonly string[];
}

export interface AppRoleSecretIdRecord {
  readonly accessor: string;
  readonly tenant: string;
  readonly role: string;
  readonly secretHash: string;
  /** Undefined: unlimited. */
  readonly usesLeft: number | undefined;
  readonly createdAt: string;
  readonly expiresAt: string | undefined;
}

/** Storage for AppRole roles and secret IDs (only hashes of secret IDs are stored). */
export interface AppRoleStore {
  getRole(tenant: string, name: string): Promise<AppRoleRecord | undefined>;
  /** Returns undefined when no role of the tenant has that role ID. */
  roleByRoleId(tenant: string, roleId: string): Promise<AppRoleRecord | undefined>;
  putRole(role: AppRoleRecord): Promise<void>;
  /** Deletes the role and its secret IDs; returns false when there was none. */
  deleteRole(tenant: string, name: string): Promise<boolean>;
  listRoles(tenant: string): Promise<string[]>;
  insertSecretId(record: AppRoleSecretIdRecord): Promise<void>;
  getSecretId(accessor: string): Promise<AppRoleSecretIdRecord | undefined>;
  /**
   * Spends one use atomically: returns false when none is left (or the secret ID is gone), so two
   * concurrent logins can never both spend the last use. The secret ID is deleted with its last use.
   */
  consumeSecretId(accessor: string): Promise<boolean>;
  /** Returns false when there was no such secret ID. */
  deleteSecretId(accessor: string): Promise<boolean>;
}

/** A cert auth role (Vault auth/cert): SVIDs whose SPIFFE ID it accepts, and the policies it grants. */
export interface CertRoleRecord {
  readonly tenant: string;
  readonly name: string;
  readonly allowedSpiffeIds: readonly string[];
  readonly policies: readonly string[];
  readonly tokenTtl: number;
  readonly createdAt: string;
}

export interface CertRoleStore {
  get(tenant: string, name: string): Promise<CertRoleRecord | undefined>;
  list(tenant: string): Promise<CertRoleRecord[]>;
  put(role: CertRoleRecord): Promise<void>;
  delete(tenant: string, name: string): Promise<boolean>;
}
