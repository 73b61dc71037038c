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
  authz_entities: AuthzEntitiesTable;
  ca_certificates: CaCertificatesTable;
  barrier_keyring: BarrierKeyringTable;
  pki_certificates: PkiCertificatesTable;
  pki_crl_state: PkiCrlStateTable;
  pki_bundle_state: PkiBundleStateTable;
  audit_sink_cursors: AuditSinkCursorsTable;
  audit_legal_hold: AuditLegalHoldTable;
  pki_registrations: PkiRegistrationsTable;
  pki_join_tokens: PkiJoinTokensTable;
  pki_agents: PkiAgentsTable;
  audit_tree_nodes: AuditTreeNodesTable;
  secrets_keyring: SecretsKeyringTable;
  secrets_mounts: SecretsMountsTable;
  kv_metadata: KvMetadataTable;
  kv_versions: KvVersionsTable;
  kv_config: KvConfigTable;
  acl_policies: AclPoliciesTable;
  approle_roles: AppRoleRolesTable;
  approle_secret_ids: AppRoleSecretIdsTable;
  cert_roles: CertRolesTable;
  transit_keys: TransitKeysTable;
  transit_key_versions: TransitKeyVersionsTable;
  secrets_leases: SecretsLeasesTable;
  secrets_database_configs: SecretsDatabaseConfigsTable;
  secrets_database_roles: SecretsDatabaseRolesTable;
  secrets_database_static_roles: SecretsDatabaseStaticRolesTable;
  secrets_rotation_policies: SecretsRotationPoliciesTable;
  secrets_grace_versions: SecretsGraceVersionsTable;
  secrets_events: SecretsEventsTable;
  secrets_event_head: SecretsEventHeadTable;
  pki_events: PkiEventsTable;
  pki_event_head: PkiEventHeadTable;
  pki_event_serials: PkiEventSerialsTable;
  pki_crl_bases: PkiCrlBasesTable;
  vault_token_roles: VaultTokenRolesTable;
  vault_wrapped_responses: VaultWrappedResponsesTable;
  kv1_entries: Kv1EntriesTable;
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
  /** Vault token fields (migration 0014_secrets_auth); null on tokens made by POST /v1/tokens. */
  parent: string | null;
  period: number | null;
  creation_ttl: number | null;
  explicit_max_expires_at: string | null;
  renewable: number | null;
  /** 0023_vault_tokens_wrapping: uses granted at creation and uses left (null: unlimited). */
  num_uses: number | null;
  uses_left: number | null;
  /** 0023_vault_tokens_wrapping: the token role it was created against, and Vault's creation path. */
  role: string | null;
  creation_path: string | null;
  /** 0028_bound_cidrs: JSON array of the CIDR blocks the token may be used from; null: anywhere. */
  bound_cidrs: string | null;
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

/**
 * Roots of the audit tree's perfect subtrees of height ≥ 4, written as integration completes
 * them (migration 0008); proofs and tiles read them instead of rehashing leaves.
 */
export interface AuditTreeNodesTable {
  height: number;
  /** The subtree covers leaves [idx·2^height, (idx+1)·2^height). */
  idx: number;
  /** Hex SHA-256 (RFC 6962 §2.1 node hash). */
  hash: string;
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
  /** Policy tests, JSON file name → YAML (migration 0010). */
  tests: string | null;
  /** Why a rejected version was refused, JSON array of lines (migration 0010). */
  reasons: string | null;
}

/** The entity store of one policy store (migration 0010): the whole set, replaced as one. */
export interface AuthzEntitiesTable {
  tenant: string;
  store: string;
  revision: number;
  /** Cedar entity JSON array. */
  entities: string;
  updated_at: string;
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
  /** When a prepared intermediate may start signing (0020_pki_rotation); null otherwise. */
  activate_after: string | null;
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

/** A transit named key and its configuration (migration 0015). Flags are 1 or 0. */
export interface TransitKeysTable {
  tenant: string;
  /** The mount the key lives under, as the secrets-engine registry names it. */
  mount: string;
  name: string;
  type: string;
  derived: number;
  exportable: number;
  allow_plaintext_backup: number;
  deletion_allowed: number;
  latest_version: number;
  min_decryption_version: number;
  /** 0 means "always the latest version", as in Vault. */
  min_encryption_version: number;
  /** Versions below this were trimmed (their rows deleted); 0 before any trim. */
  min_available_version: number;
  created_at: string;
  updated_at: string;
}

/** One version of a transit key (migration 0015). */
export interface TransitKeyVersionsTable {
  tenant: string;
  mount: string;
  name: string;
  version: number;
  /** Barrier ciphertext of the version's key and HMAC key (src/secrets/transit/material.ts). */
  sealed_material: string;
  /** The public key of an asymmetric version as Vault shows it (ed25519: base64, others: SPKI PEM); null for symmetric keys. */
  public_key: string | null;
  created_at: string;
}

/** A secret's lease (migration 0016); see src/secrets/leases/lease.ts. */
export interface SecretsLeasesTable {
  tenant: string;
  lease_id: string;
  engine: string;
  mount: string;
  issued_at: string;
  last_renewal_at: string | null;
  expires_at: string;
  max_expires_at: string;
  /** 1 renewable, 0 not (an integer on both engines). */
  renewable: number;
  /** Seconds a renewal without an increment extends the lease by. */
  default_ttl: number;
  /** Barrier ciphertext of what the engine needs to revoke the secret (JSON). */
  sealed_data: string;
  /** When the expiry worker next acts: the expiry, or the next retry of a failed revocation. */
  revoke_after: string;
  revoke_attempts: number;
  last_error: string | null;
}

/** A database engine connection (migration 0017); `sealed_password` is a barrier ciphertext. */
export interface SecretsDatabaseConfigsTable {
  tenant: string;
  mount: string;
  name: string;
  plugin_name: string;
  connection_url: string;
  username: string;
  sealed_password: string;
  /** 0026: the new root password's ciphertext while a root rotation is under way, else null. */
  pending_sealed_password: string | null;
  /** JSON array of role names, `["*"]` for all. */
  allowed_roles: string;
  verify_connection: number;
  /** JSON array of SQL statements. */
  root_rotation_statements: string;
  updated_at: string;
}

/** A dynamic database role (migration 0017); statements are JSON arrays, TTLs seconds. */
export interface SecretsDatabaseRolesTable {
  tenant: string;
  mount: string;
  name: string;
  db_name: string;
  creation_statements: string;
  revocation_statements: string;
  renew_statements: string;
  default_ttl: number;
  max_ttl: number;
  updated_at: string;
}

/** A static database role (migration 0017): an existing user whose password is rotated. */
export interface SecretsDatabaseStaticRolesTable {
  tenant: string;
  mount: string;
  name: string;
  db_name: string;
  username: string;
  rotation_period: number;
  rotation_statements: string;
  sealed_password: string;
  /** 0026: the new password's ciphertext while a rotation is under way, else null. */
  pending_sealed_password: string | null;
  last_rotated_at: string;
  next_rotation_at: string;
  rotation_attempts: number;
  last_error: string | null;
}

/** A registration entry (migration 0018). `selectors` and `dns_names` are JSON string arrays. */
export interface PkiRegistrationsTable {
  id: string;
  tenant: string;
  spiffe_id: string;
  parent: string;
  selectors: string;
  dns_names: string;
  ttl_ms: number | string | null;
  created_at: string;
  created_by: string;
}

/** A one-time join token (migration 0019); the secret is never stored, only its SHA-256. */
export interface PkiJoinTokensTable {
  id: string;
  tenant: string;
  secret_hash: string;
  spiffe_id: string | null;
  created_at: string;
  created_by: string;
  expires_at: string;
  used_at: string | null;
  used_by: string | null;
}

/** An attested node agent (migration 0019). `selectors` is a JSON string array. */
export interface PkiAgentsTable {
  tenant: string;
  spiffe_id: string;
  method: string;
  selectors: string;
  attested_at: string;
}

export interface SecretsKeyringTable {
  id: number;
  ciphertext: string;
  seal_type: string;
  secret_shares: number;
  secret_threshold: number;
  updated_at: string;
}

export interface SecretsMountsTable {
  tenant: string;
  path: string;
  type: string;
  accessor: string;
  description: string;
  /** JSON object of strings. */
  options: string;
  default_lease_ttl: number;
  max_lease_ttl: number;
  created_at: string;
}

export interface KvMetadataTable {
  tenant: string;
  mount: string;
  path: string;
  current_version: number;
  oldest_version: number;
  max_versions: number;
  cas_required: number;
  delete_version_after: number;
  /** JSON object of strings. */
  custom_metadata: string;
  created_at: string;
  updated_at: string;
}

export interface KvVersionsTable {
  tenant: string;
  mount: string;
  path: string;
  version: number;
  /** Barrier ciphertext; null once destroyed. */
  ciphertext: string | null;
  created_at: string;
  deletion_time: string | null;
  destroyed: number;
}

export interface KvConfigTable {
  tenant: string;
  mount: string;
  max_versions: number;
  cas_required: number;
  delete_version_after: number;
}

export interface AclPoliciesTable {
  tenant: string;
  name: string;
  hcl: string;
  updated_at: string;
}

/** 0020_pki_rotation: one row, id 'bundle'. */
export interface PkiBundleStateTable {
  id: string;
  sequence: number;
  updated_at: string;
}

export interface AppRoleRolesTable {
  tenant: string;
  name: string;
  role_id: string;
  /** JSON array. */
  policies: string;
  secret_id_ttl: number;
  secret_id_num_uses: number;
  token_ttl: number;
  token_max_ttl: number;
  token_period: number;
  created_at: string;
  /** 0028_bound_cidrs: JSON arrays of CIDR blocks; null: none. */
  secret_id_bound_cidrs: string | null;
  token_bound_cidrs: string | null;
}

export interface AppRoleSecretIdsTable {
  accessor: string;
  tenant: string;
  role: string;
  /** SHA-256 of the secret part, hex. */
  secret_hash: string;
  /** Null: unlimited. */
  uses_left: number | null;
  created_at: string;
  expires_at: string | null;
}

export interface CertRolesTable {
  tenant: string;
  name: string;
  /** JSON array of SPIFFE ID patterns (a trailing `*` matches any suffix). */
  allowed_spiffe_ids: string;
  /** JSON array. */
  policies: string;
  token_ttl: number;
  created_at: string;
}

/** 0022_secrets_rotation: a KV secret's rotation policy and schedule (src/secrets/rotation/store.ts). */
export interface SecretsRotationPoliciesTable {
  tenant: string;
  mount: string;
  path: string;
  mount_path: string;
  period_seconds: number;
  grace_seconds: number;
  /** JSON generator spec; null when an application rotates. */
  generator: string | null;
  next_rotation_at: string;
  last_rotated_at: string | null;
  /** 'scheduled' | 'due'. */
  state: string;
  attempts: number;
  last_error: string | null;
}

/** 0022_secrets_rotation: versions kept readable after a rotation until readable_until. */
export interface SecretsGraceVersionsTable {
  tenant: string;
  mount: string;
  path: string;
  version: number;
  mount_path: string;
  readable_until: string;
}

/** 0022_secrets_rotation: secret change events (no values), the source of GET /v1/secrets/events. */
export interface SecretsEventsTable {
  /** Taken from secrets_event_head in the writing transaction: id order is commit order. */
  id: number;
  tenant: string;
  kind: string;
  mount_path: string;
  path: string;
  version: number | null;
  occurred_at: string;
  previous_readable_until: string | null;
}

/** 0022_secrets_rotation: the last id taken in secrets_events (one row, id 'head'). */
export interface SecretsEventHeadTable {
  id: string;
  sequence: number;
  updated_at: string;
}

/** 0025_pki_replicas: the PKI change log, in commit order (src/pki/replica-sync.ts). */
export interface PkiEventsTable {
  sequence: number;
  tenant: string;
  /** 'revoked'. */
  type: string;
  /** The event as sent on GET /v1/pki/events, JSON. */
  payload: string;
  created_at: string;
}

/** 0025_pki_replicas: the certificates each pki_events entry revoked, by issuer key id. */
export interface PkiEventSerialsTable {
  issuer: string;
  sequence: number;
  serial_number: string;
}

/** 0025_pki_replicas: the last sequence taken in pki_events (one row, id 'head'). */
export interface PkiEventHeadTable {
  id: string;
  sequence: number;
  updated_at: string;
}

/** 0025_pki_replicas: complete CRLs within their validity, the bases delta CRLs name. */
export interface PkiCrlBasesTable {
  issuer: string;
  crl_number: number;
  event_sequence: number;
  next_update: string;
}

/** 0023_vault_tokens_wrapping: token roles (auth/token/roles/<name>); lists are JSON arrays, flags 0/1. */
export interface VaultTokenRolesTable {
  tenant: string;
  name: string;
  allowed_policies: string;
  disallowed_policies: string;
  orphan: number;
  renewable: number;
  path_suffix: string;
  /** Seconds; 0: unset. */
  token_period: number;
  token_explicit_max_ttl: number;
  token_num_uses: number;
  token_no_default_policy: number;
  updated_at: string;
  /** 0028_bound_cidrs: JSON array of CIDR blocks given to the role's tokens; null: none. */
  token_bound_cidrs: string | null;
}

/** 0023_vault_tokens_wrapping: wrapped responses awaiting their single unwrap. */
export interface VaultWrappedResponsesTable {
  accessor: string;
  tenant: string;
  /** SHA-256 of the wrapping token's secret part, hex. */
  secret_hash: string;
  creation_path: string;
  creation_time: string;
  /** Seconds. */
  ttl: number;
  expires_at: string;
  wrapped_accessor: string | null;
  /** Barrier ciphertext of the wrapped response (JSON). */
  ciphertext: string;
}

/** 0023_vault_tokens_wrapping: KV version 1 secrets, one barrier ciphertext per path. */
export interface Kv1EntriesTable {
  tenant: string;
  mount: string;
  path: string;
  ciphertext: string;
  created_at: string;
  updated_at: string;
}
