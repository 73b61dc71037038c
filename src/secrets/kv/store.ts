/** A KV v2 secret's address: tenant, the mount's accessor (a remount starts empty), the key path. */
export interface KvKey {
  readonly tenant: string;
  readonly mount: string;
  readonly path: string;
}

export interface KvMetadataRecord extends KvKey {
  readonly currentVersion: number;
  /** The oldest version still kept (max_versions prunes below it). */
  readonly oldestVersion: number;
  /** 0: the mount's setting applies. */
  readonly maxVersions: number;
  readonly casRequired: boolean;
  /** Seconds; 0 means never. */
  readonly deleteVersionAfter: number;
  readonly customMetadata: Readonly<Record<string, string>>;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface KvVersionRecord extends KvKey {
  readonly version: number;
  /** Barrier ciphertext of the JSON data; null once destroyed. */
  readonly ciphertext: string | null;
  readonly createdAt: string;
  /** Soft deletion time (also a scheduled one from delete_version_after); null when live. */
  readonly deletionTime: string | null;
  readonly destroyed: boolean;
}

/** The mount-wide `config` endpoint. */
export interface KvConfigRecord {
  readonly tenant: string;
  readonly mount: string;
  readonly maxVersions: number;
  readonly casRequired: boolean;
  readonly deleteVersionAfter: number;
}

/** Storage for KV v2. Writes are meant to run inside the request's transaction. */
export interface KvStore {
  /** Returns undefined when the secret has no metadata. */
  metadata(key: KvKey): Promise<KvMetadataRecord | undefined>;
  /**
   * Creates the metadata row when absent (version 0) and returns it locked for the rest of the
   * transaction (PostgreSQL `FOR UPDATE`; SQLite has a single writer), so concurrent writers of
   * one secret serialize and check-and-set is exact.
   */
  lockMetadata(key: KvKey, at: string): Promise<KvMetadataRecord>;
  putMetadata(record: KvMetadataRecord): Promise<void>;
  /** Returns undefined when that version does not exist (never written or pruned). */
  version(key: KvKey, version: number): Promise<KvVersionRecord | undefined>;
  /**
   * The metadata and one version (0: the current one) in a single read, for `GET data/`. Returns
   * undefined when the secret has no metadata, and `version` undefined when that version does not
   * exist.
   */
  readVersion(key: KvKey, version: number): Promise<{ readonly metadata: KvMetadataRecord; readonly version: KvVersionRecord | undefined } | undefined>;
  /** Every kept version, oldest first. */
  versions(key: KvKey): Promise<KvVersionRecord[]>;
  insertVersion(record: KvVersionRecord): Promise<void>;
  updateVersion(key: KvKey, version: number, change: { readonly deletionTime?: string | null; readonly destroy?: true }): Promise<void>;
  /** Deletes versions older than `version` (max_versions pruning). */
  pruneBefore(key: KvKey, version: number): Promise<void>;
  /** Deletes the metadata and every version. */
  deleteSecret(key: KvKey): Promise<void>;
  /** Paths of the mount starting with `prefix` that have metadata, sorted. */
  paths(tenant: string, mount: string, prefix: string): Promise<string[]>;
  config(tenant: string, mount: string): Promise<KvConfigRecord | undefined>;
  putConfig(record: KvConfigRecord): Promise<void>;
  /** Deletes everything of the mount (unmount). */
  purgeMount(tenant: string, mount: string): Promise<void>;
}
