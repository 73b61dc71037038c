import type { Mount } from './engine.js';

/** Storage for the barrier keyring: one sealed blob. */
export interface KeyringStore {
  /** Returns undefined before the barrier was first initialized. */
  load(): Promise<string | undefined>;
  /** Stores the blob only if none exists yet; returns false when another writer got there first. */
  initialize(ciphertext: string, at: string): Promise<boolean>;
}

/** How the secrets barrier's root key is kept (`sys/init`). */
export interface SealConfig {
  /** `file`: auto-unseal from `<data-dir>/unseal.key` (development); `shamir`: shares held by people. */
  readonly type: 'file' | 'shamir';
  readonly secretShares: number;
  readonly secretThreshold: number;
}

/**
 * The secrets barrier's keyring (KV values, transit keys, database credentials), kept apart from
 * the infrastructure keyring of {@link KeyringStore} so that it can be sealed with Shamir shares
 * while the CA and the audit log keep running.
 */
export interface SecretsKeyringStore extends KeyringStore {
  /** The blob, locked until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite has one writer). */
  lockKeyring(): Promise<string | undefined>;
  /** Replaces the blob (rotation adds a key; `sys/init` rewraps it under a new root key). */
  replace(ciphertext: string, at: string): Promise<void>;
  /** Undefined until the keyring exists. */
  sealConfig(): Promise<SealConfig | undefined>;
  setSealConfig(config: SealConfig, at: string): Promise<void>;
}

/** Mounted secrets engines per tenant (`sys/mounts`). */
export interface MountStore {
  /**
   * Serializes the tenant's mount changes until the transaction ends (PostgreSQL advisory lock;
   * SQLite has one writer), so the nesting check and the insert see the same mount table.
   */
  lockTenant(tenant: string): Promise<void>;
  /** Mounts of the tenant ordered by path. */
  list(tenant: string): Promise<Mount[]>;
  /** Returns false when the tenant already has a mount at that path. */
  insert(mount: Mount): Promise<boolean>;
  /** Replaces description and lease TTLs (`sys/mounts/<path>/tune`). */
  update(mount: Mount): Promise<void>;
  /** Returns false when there was no such mount. */
  delete(tenant: string, path: string): Promise<boolean>;
  /** Every mount path of every tenant: routing learns which first path segments are mounts. */
  allPaths(): Promise<string[]>;
}

/** Vault ACL policies as written (`sys/policy`); their Cedar translation lives in the policy store. */
export interface AclPolicyRecord {
  readonly tenant: string;
  readonly name: string;
  readonly hcl: string;
  readonly updatedAt: string;
}

export interface AclPolicyStore {
  /**
   * Serializes the tenant's ACL changes until the transaction ends (PostgreSQL advisory lock;
   * SQLite has one writer), so two concurrent writes cannot both claim the next policy version.
   */
  lockTenant(tenant: string): Promise<void>;
  /** Returns undefined when the tenant has no policy of that name. */
  get(tenant: string, name: string): Promise<AclPolicyRecord | undefined>;
  /** Every policy of the tenant, ordered by name. */
  list(tenant: string): Promise<AclPolicyRecord[]>;
  put(record: AclPolicyRecord): Promise<void>;
  /** Returns false when there was no such policy. */
  delete(tenant: string, name: string): Promise<boolean>;
}
