/** A wrapped response awaiting its single unwrap (Vault's response-wrapping cubbyhole). */
export interface WrappedResponseRecord {
  /** The wrapping token's accessor: it names the record, as a token's accessor names a token. */
  readonly accessor: string;
  readonly tenant: string;
  /** SHA-256 of the wrapping token's secret part; the token itself is never stored. */
  readonly secretHash: string;
  /** The path whose response was wrapped (`kv/data/app`, `sys/wrapping/wrap`, …). */
  readonly creationPath: string;
  readonly creationTime: string;
  /** Seconds the wrapping token was created to live. */
  readonly ttl: number;
  readonly expiresAt: string;
  /** The accessor of a wrapped token or secret ID, shown in `wrap_info` and the audit log. */
  readonly wrappedAccessor: string | undefined;
  /** Barrier ciphertext of the response body (JSON), bound to the tenant and the accessor. */
  readonly ciphertext: string;
}

/** Storage of wrapped responses. */
export interface WrappingStore {
  insert(record: WrappedResponseRecord): Promise<void>;
  /** Returns undefined when no record has that accessor (never made, unwrapped, or purged). */
  get(accessor: string): Promise<WrappedResponseRecord | undefined>;
  /**
   * Deletes the record; returns false when it was already gone. One conditional DELETE, so of
   * concurrent unwraps of one token on any number of replicas exactly one gets true.
   */
  take(accessor: string): Promise<boolean>;
  /** Deletes every record expired at `now`; returns how many. */
  purgeExpired(now: string): Promise<number>;
}
