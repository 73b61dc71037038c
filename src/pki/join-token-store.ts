/** The storage port for one-time join tokens (src/pki/join-token.ts). */
export interface JoinTokenRecord {
  /** `jt_<random>`, the public half of the token; unique across tenants. */
  readonly id: string;
  readonly tenant: string;
  /** SHA-256 of the secret half, hex. The secret itself is never stored. */
  readonly secretHash: string;
  /** The agent SPIFFE ID the token grants; null for the default `…/rampart/agent/join_token/<id>`. */
  readonly spiffeId: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly expiresAt: string;
  readonly usedAt: string | null;
  /** The agent SPIFFE ID that used it. */
  readonly usedBy: string | null;
}

export interface JoinTokenStore {
  insert(record: JoinTokenRecord): Promise<void>;
  /** The token with that id, in any tenant (the token names its tenant); undefined when none. */
  get(id: string): Promise<JoinTokenRecord | undefined>;
  /**
   * Marks the token used, only if it is still unused: a conditional update, so of two concurrent
   * attestations with one token exactly one gets true. Call it in the attestation's transaction.
   */
  consume(id: string, at: string, usedBy: string): Promise<boolean>;
}
