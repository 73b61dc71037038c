import type { Generated } from 'kysely';

/**
 * The tables, as Kysely sees them. Timestamps are ISO-8601 UTC text (`Date#toISOString`), which
 * sorts and compares correctly as text on both SQLite and PostgreSQL.
 */
export interface Database {
  tenants: TenantsTable;
  tokens: TokensTable;
  audit_events: AuditEventsTable;
  audit_tree: AuditTreeTable;
  audit_tree_heads: AuditTreeHeadsTable;
  audit_salt: AuditSaltTable;
  audit_subject_keys: AuditSubjectKeysTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_log_key: AuditLogKeyTable;
  policy_versions: PolicyVersionsTable;
  ca_certificates: CaCertificatesTable;
  barrier_keyring: BarrierKeyringTable;
  pki_certificates: PkiCertificatesTable;
  pki_crl_state: PkiCrlStateTable;
  audit_sink_cursors: AuditSinkCursorsTable;
  audit_legal_hold: AuditLegalHoldTable;
}

export interface TenantsTable {
  name: string;
  trust_domain: string;
  created_at: string;
}

export interface TokensTable {
  accessor: string;
  tenant: string;
  /** SHA-256 of the token's secret part, hex. The secret itself is never stored. */
  secret_hash: string;
  policies: string;
  display_name: string;
  created_by: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface AuditEventsTable {
  id: Generated<number>;
  tenant: string;
  recorded_at: string;
  /** The exact bytes (UTF-8 JSON) that the Merkle leaf hash covers. */
  payload: string;
  leaf_index: number | null;
  leaf_hash: string | null;
  /** Indexed copies of payload fields for queries (migration 0005); never the source of truth. */
  event_time: string | null;
  principal_id: string | null;
  action: string | null;
  resource: string | null;
  outcome: string | null;
  /**
   * Set when retention pruned the payload (migration 0007): `payload` is then '' (never a real
   * event, which is JSON) and the indexed copies are null; `leaf_index` and `leaf_hash` stay.
   */
  pruned_at: string | null;
}

/** Per-data-subject keys for crypto-shredding (migration 0006); `sealed_key` is null once erased. */
export interface AuditSubjectKeysTable {
  key_id: string;
  tenant: string;
  /** The subject's salted HMAC, never the subject's identifier. */
  subject_ref: string;
  sealed_key: string | null;
  created_at: string;
  erased_at: string | null;
}

/** The per-log HMAC salt, sealed under the barrier (migration 0005). */
export interface AuditSaltTable {
  id: number;
  ciphertext: string;
  created_at: string;
}

export interface AuditTreeTable {
  id: number;
  size: number;
  /** CompactRange JSON: the right-edge subtree roots, enough to extend the tree. */
  frontier: string;
  root_hash: string;
  updated_at: string;
}

export interface AuditTreeHeadsTable {
  size: number;
  root_hash: string;
  created_at: string;
}

/** Signed checkpoints, one per tree size (migration 0002). */
export interface AuditCheckpointsTable {
  size: number;
  root_hash: string;
  /** The signed note, exactly as served at /v1/audit/tlog/checkpoint. */
  note: string;
  /** CompactRange JSON at this size. */
  frontier: string;
  created_at: string;
}

/** The audit log's identity: one row (id = 1) (migration 0002). */
export interface AuditLogKeyTable {
  id: number;
  origin: string;
  verifier_key: string;
  /** Barrier ciphertext of the Ed25519 PKCS#8 private key. */
  private_key: string;
  created_at: string;
}

export interface PolicyVersionsTable {
  tenant: string;
  store: string;
  version: number;
  hash: string;
  policies: string;
  schema: string | null;
  status: string;
  author: string;
  message: string;
  created_at: string;
}

export interface CaCertificatesTable {
  id: string;
  tenant: string;
  role: string;
  certificate_pem: string;
  /** Barrier ciphertext of the PKCS#8 private key; null once the key was exported and removed. */
  private_key: string | null;
  algorithm: string;
  status: string;
  not_after: string;
  created_at: string;
}

export interface BarrierKeyringTable {
  id: number;
  ciphertext: string;
  updated_at: string;
}


export interface PkiCertificatesTable {
  /** Lowercase hex, minimal DER INTEGER content octets (see canonicalSerial). */
  serial_number: string;
  tenant: string;
  spiffe_id: string;
  /** Hex subject key identifier of the issuing CA. */
  issuer: string;
  not_before: string;
  not_after: string;
  certificate_pem: string;
  issued_at: string;
  revoked_at: string | null;
  /** RFC 5280 §5.3.1 reason name, e.g. `keyCompromise`; null while not revoked. */
  revocation_reason: string | null;
}

export interface PkiCrlStateTable {
  issuer: string;
  crl_number: number;
  revision: number;
  updated_at: string;
}

/** One row per SIEM sink: everything below `next_leaf_index` was delivered (migration 0004). */
export interface AuditSinkCursorsTable {
  name: string;
  next_leaf_index: number;
  updated_at: string;
}

/** The audit log's legal hold: one row (id = 1) (migration 0007). While `enabled` is 1 nothing is pruned. */
export interface AuditLegalHoldTable {
  id: number;
  /** 1 held, 0 released (an integer on both engines). */
  enabled: number;
  /** Why the hold was placed (or released); '' before the first change. */
  reason: string;
  /** When the hold in force was placed; null while released. */
  since: string | null;
  updated_at: string;
}
