/**
 * One error type for the whole control plane, with a stable machine-readable `code`.
 *
 * Codes are string literals grouped by capability so that `switch (err.code)` narrows. The HTTP
 * status of each code lives in one table ({@link ERROR_CODES}); nothing ever matches on message
 * text. Codes are never reused or renamed: clients and dashboards key on them.
 * `docs/errors.md` lists every code; `test/core/errors.test.ts` keeps the two in sync.
 */

export interface ErrorCodeInfo {
  /** HTTP status the server answers with. */
  readonly status: number;
  /** Short, human-readable summary of the problem type (RFC 9457 §3.1.3 `title`). */
  readonly title: string;
}

export const ERROR_CODES = {
  // request shape
  'request.malformed_json': { status: 400, title: 'Request body is not valid JSON' },
  'request.invalid': { status: 400, title: 'Request failed validation' },
  'request.unknown_field': { status: 400, title: 'Request has a field this endpoint does not accept' },
  'request.body_too_large': { status: 413, title: 'Request body exceeds the configured limit' },
  'request.unsupported_media_type': { status: 415, title: 'Request body media type is not supported' },
  'request.not_found': { status: 404, title: 'No such route' },
  'request.malformed_http': { status: 400, title: 'The request is not well-formed HTTP/1.1' },
  'request.headers_too_large': { status: 431, title: 'The request head exceeds the size limit' },
  'request.timeout': { status: 408, title: 'The request was not received in time' },
  // authentication
  'auth.missing_credentials': { status: 401, title: 'No credentials were presented' },
  'auth.token_invalid': { status: 401, title: 'The token is not recognised' },
  'auth.token_expired': { status: 401, title: 'The token has expired' },
  'auth.token_revoked': { status: 401, title: 'The token has been revoked' },
  'auth.token_exhausted': { status: 401, title: 'The token has used all its uses' },
  'auth.source_address_refused': { status: 403, title: 'The token may not be used from this client address' },
  'auth.client_cert_untrusted': { status: 401, title: 'The client certificate was not issued by this control plane' },
  'auth.client_cert_invalid': { status: 401, title: 'The client certificate carries no usable workload identity' },
  'auth.client_cert_revoked': { status: 401, title: 'The client certificate has been revoked' },
  // tenants
  'tenant.unknown': { status: 404, title: 'No such tenant' },
  'tenant.exists': { status: 409, title: 'A tenant with that name already exists' },
  'tenant.name_invalid': { status: 400, title: 'Tenant name is not valid' },
  // tokens
  'token.not_found': { status: 404, title: 'No such token' },
  'token.ttl_invalid': { status: 400, title: 'Token TTL is not valid' },
  'token.uses_invalid': { status: 400, title: 'Token num_uses is not valid' },
  'token.use_limited': { status: 400, title: 'A use-limited token cannot create tokens' },
  // authorization
  'authz.denied': { status: 403, title: 'Access denied' },
  'authz.evaluation_failed': { status: 403, title: 'The policy could not be evaluated; access denied' },
  // authz: the decision API (docs/authz-decisions.md)
  'authz.store_empty': { status: 404, title: 'The policy store has no active policy version' },
  'authz.action_unknown': { status: 400, title: "The action is not declared in the policy store's schema" },
  'authz.request_invalid': { status: 400, title: 'The decision request cannot be evaluated: its entities or context are malformed' },
  'authz.candidate_invalid': { status: 400, title: 'The candidate policy set of a preview does not parse' },
  // authz: policy stores, versions and entities (docs/authz-policies.md)
  'authz.store_not_found': { status: 404, title: 'No such policy store' },
  'authz.version_not_found': { status: 404, title: 'No such policy version' },
  'authz.policy_parse_failed': { status: 422, title: 'A policy or the schema does not parse; the version was rejected' },
  'authz.policy_invalid': { status: 422, title: 'The policies do not validate against the schema; the version was rejected' },
  'authz.policy_tests_failed': { status: 422, title: "The store's policy tests fail; the version was rejected" },
  'authz.lockout': { status: 409, title: 'The change would leave no principal able to manage policies; the version was rejected' },
  'authz.entities_invalid': { status: 400, title: 'The entities are malformed, of an unknown type or have a cycle in their parents' },
  'authz.limit_exceeded': { status: 413, title: 'The policy set, tests or entities exceed a size limit' },
  'authz.schema_fixed': { status: 400, title: "The rampart store's schema is Rampart's own and cannot be pushed" },
  'authz.version_conflict': { status: 409, title: 'Another change to the policy store committed at the same time' },
  // audit
  'audit.write_failed': { status: 503, title: 'The audit log could not record the operation' },
  'audit.pushback': { status: 503, title: 'The audit log is overloaded; retry later' },
  'audit.proof_invalid': { status: 422, title: 'The Merkle proof does not verify' },
  'audit.range_invalid': { status: 400, title: 'Tree size or index out of range' },
  'audit.checkpoint_invalid': { status: 422, title: 'The checkpoint is malformed or its signature does not verify' },
  'audit.log_inconsistent': { status: 500, title: 'The audit log contradicts a signed checkpoint' },
  'audit.entry_pruned': { status: 410, title: 'Retention pruned the content of an entry in this range' },
  'audit.origin_mismatch': { status: 500, title: 'The configured audit origin differs from the origin the log was created with' },
  'audit.entry_too_large': { status: 500, title: 'The audit event exceeds the largest entry the log holds' },
  // pki
  'pki.csr_invalid': { status: 400, title: 'The certificate signing request is not valid' },
  'pki.ca_unavailable': { status: 503, title: 'The certificate authority is not available' },
  'pki.spiffe_id_invalid': { status: 400, title: 'The SPIFFE ID is not valid' },
  'pki.spiffe_id_forbidden': { status: 403, title: "The SPIFFE ID is outside the tenant's trust domain" },
  'pki.ttl_invalid': { status: 400, title: 'Certificate TTL is not valid' },
  'pki.certificate_not_found': { status: 404, title: 'No such certificate' },
  'pki.ocsp_request_invalid': { status: 400, title: 'The OCSP request is not valid' },
  // pki: key types, trust bundles, CA rotation (issue 3 part B)
  'pki.key_unsupported': { status: 400, title: 'The key type is not supported for certificates' },
  'pki.rotation_in_progress': { status: 409, title: 'A CA rotation is already prepared' },
  'pki.rotation_not_prepared': { status: 409, title: 'No prepared intermediate CA to activate' },
  'pki.root_offline': { status: 409, title: 'The root CA key is not on this server' },
  'pki.root_key_invalid': { status: 400, title: 'The root key does not decrypt or matches no root CA' },
  'pki.issuer_not_found': { status: 404, title: 'No issuing CA with that key id answers here' },
  'pki.ca_certificate_invalid': { status: 400, title: 'The signed intermediate CA certificate is not acceptable' },
  // pki: what a CSR may ask for (docs/pki.md, "Signing a CSR")
  'pki.csr_requests_ca': { status: 400, title: 'The CSR asks for a CA certificate' },
  'pki.csr_multiple_uris': { status: 400, title: 'The CSR asks for more than one URI SAN' },
  'pki.csr_spiffe_id_mismatch': { status: 400, title: "The CSR's URI SAN is not the SPIFFE ID requested" },
  'pki.csr_san_not_allowed': { status: 400, title: 'The CSR asks for a subject alternative name that is not granted' },
  // pki: registration entries and node attestation (docs/pki.md)
  'pki.selector_invalid': { status: 400, title: 'A selector is not <type>:<value>' },
  'pki.registration_not_found': { status: 404, title: 'No such registration entry' },
  'pki.registration_exists': { status: 409, title: 'An entry with that SPIFFE ID, parent and selectors already exists' },
  'pki.attestation_invalid': { status: 400, title: 'Send exactly one kind of attestation evidence' },
  'pki.join_token_invalid': { status: 401, title: 'The join token is not recognised' },
  'pki.join_token_expired': { status: 401, title: 'The join token has expired' },
  'pki.join_token_replayed': { status: 401, title: 'The join token was already used' },
  'pki.kube_token_invalid': { status: 401, title: 'The Kubernetes token is malformed or lacks its kubernetes.io claims' },
  'pki.kube_token_issuer_unknown': { status: 401, title: 'No Kubernetes attestor is configured for the token issuer' },
  'pki.kube_token_alg_forbidden': { status: 401, title: 'The Kubernetes token uses a signature algorithm that is not accepted' },
  'pki.kube_token_signature_invalid': { status: 401, title: 'The Kubernetes token signature does not verify' },
  'pki.kube_token_expired': { status: 401, title: 'The Kubernetes token has expired' },
  'pki.kube_token_not_yet_valid': { status: 401, title: 'The Kubernetes token is not yet valid' },
  'pki.kube_token_audience_invalid': { status: 401, title: 'The Kubernetes token is not meant for this server' },
  'pki.kube_jwks_unavailable': { status: 503, title: "The Kubernetes issuer's keys could not be fetched" },
  'pki.kube_discovery_unavailable': { status: 503, title: "The Kubernetes issuer's OIDC discovery document could not be fetched" },
  'pki.kube_discovery_invalid': { status: 503, title: "The Kubernetes issuer's OIDC discovery document names another issuer or an unacceptable jwks_uri" },
  // store
  'store.unavailable': { status: 503, title: 'The store is unreachable' },
  'store.pushback': { status: 503, title: 'Too many writes are waiting for the store; retry later' },
  // secrets barrier
  'secrets.sealed': { status: 503, title: 'The barrier is sealed' },
  'secrets.decrypt_failed': { status: 500, title: 'A sealed record failed to decrypt' },
  // secrets: the Vault-compatible API core (docs/secrets.md)
  'secrets.invalid_request': { status: 400, title: 'The secrets request is not valid' },
  'secrets.not_found': { status: 404, title: 'No such secret, mount or path' },
  'secrets.unsupported_operation': { status: 405, title: 'The path does not support this operation' },
  'secrets.mount_in_use': { status: 400, title: 'The mount path is already in use' },
  'secrets.mount_path_reserved': { status: 400, title: "The mount path collides with Rampart's own API" },
  'secrets.cas_mismatch': { status: 400, title: 'The check-and-set version does not match the current version' },
  'secrets.cas_required': { status: 400, title: 'The secret requires check-and-set' },
  'secrets.policy_invalid': { status: 400, title: 'The ACL policy does not parse' },
  'secrets.policy_reserved': { status: 400, title: 'The ACL policy name is reserved' },
  'secrets.already_initialized': { status: 400, title: 'The barrier is already initialized with Shamir shares' },
  'secrets.unseal_key_invalid': { status: 400, title: 'The unseal key share is not valid' },
  'secrets.token_not_renewable': { status: 400, title: 'The token cannot be renewed' },
  'secrets.login_failed': { status: 400, title: 'The login credentials are not valid' },
  'secrets.wrapping_token_invalid': { status: 400, title: 'The wrapping token is not valid or does not exist' },
  'secrets.rotation_failed': { status: 500, title: 'A scheduled secret rotation failed; it will be retried' },
  // secrets: transit engine
  'transit.key_not_found': { status: 404, title: 'No such transit key' },
  'transit.invalid_request': { status: 400, title: 'The transit request is not valid' },
  'transit.unsupported_operation': { status: 400, title: 'The key type does not support this operation' },
  'transit.context_required': { status: 400, title: 'The key is derived; the request must carry a context' },
  'transit.decrypt_failed': { status: 400, title: 'The ciphertext does not decrypt under this key' },
  'transit.version_disallowed': { status: 400, title: "The key version is outside what the key's configuration allows" },
  'transit.deletion_not_allowed': { status: 400, title: 'The key may not be deleted' },
  // secrets: leases (docs/secrets.md#leases)
  'lease.not_found': { status: 400, title: 'No such lease' },
  'lease.expired': { status: 400, title: 'The lease has expired' },
  'lease.not_renewable': { status: 400, title: 'The lease is not renewable' },
  'lease.revoke_failed': { status: 502, title: 'The secret behind the lease could not be revoked; revocation is retried' },
  // secrets: database engine (docs/secrets.md#database-engine)
  'database.config_not_found': { status: 404, title: 'No such database connection' },
  'database.config_invalid': { status: 400, title: 'The database connection configuration is not valid' },
  'database.role_not_found': { status: 404, title: 'No such database role' },
  'database.role_invalid': { status: 400, title: 'The database role is not valid' },
  'database.role_not_allowed': { status: 400, title: 'The connection does not allow this role' },
  'database.unavailable': { status: 502, title: 'The database could not be reached' },
  'database.statement_failed': { status: 502, title: 'The database refused a statement' },
  // server
  'server.internal': { status: 500, title: 'Internal error' },
  'server.shutting_down': { status: 503, title: 'The server is shutting down' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RampartErrorOptions {
  readonly cause?: unknown;
  /** Extra machine-readable facts for the caller (never a secret). */
  readonly details?: Record<string, unknown>;
}

export class RampartError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: C, message: string, options: RampartErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

type CodesOf<P extends string> = Extract<ErrorCode, `${P}.${string}`>;

export class RequestError extends RampartError<CodesOf<'request'>> {}
export class AuthError extends RampartError<CodesOf<'auth'>> {}
export class TenantError extends RampartError<CodesOf<'tenant'>> {}
export class TokenError extends RampartError<CodesOf<'token'>> {}
export class AuthzError extends RampartError<CodesOf<'authz'>> {}
export class AuditError extends RampartError<CodesOf<'audit'>> {}
export class PkiError extends RampartError<CodesOf<'pki'>> {}
export class StoreError extends RampartError<CodesOf<'store'>> {}
export class SecretsError extends RampartError<CodesOf<'secrets'>> {}
export class TransitError extends RampartError<CodesOf<'transit'>> {}
export class LeaseError extends RampartError<CodesOf<'lease'>> {}
export class DatabaseError extends RampartError<CodesOf<'database'>> {}
export class ServerError extends RampartError<CodesOf<'server'>> {}

export function isRampartError(err: unknown): err is RampartError {
  return err instanceof RampartError;
}
