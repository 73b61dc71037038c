import type { TransitKeyType } from './key-type.js';

/** Where a transit key lives: tenant, the mount's name in the secrets-engine registry, key name. */
export interface TransitKeyRef {
  readonly tenant: string;
  readonly mount: string;
  readonly name: string;
}

/** A named key's configuration; the version material is in {@link TransitKeyVersionRecord}s. */
export interface TransitKeyRecord extends TransitKeyRef {
  readonly type: TransitKeyType;
  readonly derived: boolean;
  readonly exportable: boolean;
  readonly allowPlaintextBackup: boolean;
  readonly deletionAllowed: boolean;
  readonly latestVersion: number;
  readonly minDecryptionVersion: number;
  /** 0 means "always the latest version", as in Vault. */
  readonly minEncryptionVersion: number;
  /** Versions below this were trimmed away; 0 before any trim. */
  readonly minAvailableVersion: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface TransitKeyVersionRecord {
  readonly version: number;
  /** Barrier ciphertext of the version's secret material (see material.ts). */
  readonly sealedMaterial: string;
  /** The public key as Vault's key read shows it; null for symmetric keys. */
  readonly publicKey: string | null;
  readonly createdAt: string;
}

/** The settings `keys/<name>/config` changes; omitted fields stay as they are. */
export interface TransitKeyConfigChange {
  readonly minDecryptionVersion: number;
  readonly minEncryptionVersion: number;
  readonly deletionAllowed: boolean;
  readonly exportable: boolean;
  readonly allowPlaintextBackup: boolean;
  readonly updatedAt: string;
}

/** Storage for transit named keys. Every method is scoped by tenant and mount. */
export interface TransitKeyStore {
  /** Returns undefined when the key does not exist. */
  get(ref: TransitKeyRef): Promise<TransitKeyRecord | undefined>;
  /** Returns undefined when the key has no such version (never had it, or it was trimmed). */
  version(ref: TransitKeyRef, version: number): Promise<TransitKeyVersionRecord | undefined>;
  /** Every stored version of the key, oldest first. */
  versions(ref: TransitKeyRef): Promise<TransitKeyVersionRecord[]>;
  /** Creates the key with its first version; returns false (and writes nothing) if it already exists. */
  create(key: TransitKeyRecord, first: TransitKeyVersionRecord): Promise<boolean>;
  /**
   * Adds `next` as the new latest version, only if the latest version is still `next.version - 1`;
   * returns false when a concurrent rotation got there first (nothing written).
   */
  addVersion(ref: TransitKeyRef, next: TransitKeyVersionRecord, updatedAt: string): Promise<boolean>;
  configure(ref: TransitKeyRef, change: TransitKeyConfigChange): Promise<void>;
  /** Deletes every version below `minAvailableVersion` and records the new floor. */
  trim(ref: TransitKeyRef, minAvailableVersion: number, updatedAt: string): Promise<void>;
  /** Deletes the key and all its versions; returns false when it did not exist. */
  delete(ref: TransitKeyRef): Promise<boolean>;
  /** Key names in ascending order, strictly after `after` when given; at most `limit`. */
  list(tenant: string, mount: string, after: string | undefined, limit: number): Promise<string[]>;
  /** Deletes every key of the mount (unmount). */
  purge(tenant: string, mount: string): Promise<void>;
}
