export type CaRole = 'root' | 'intermediate';

export interface CaRecord {
  readonly id: string;
  readonly tenant: string;
  readonly role: CaRole;
  readonly certificatePem: string;
  /** Barrier ciphertext of the PKCS#8 key; null when the key lives outside the server. */
  readonly privateKey: string | null;
  readonly algorithm: string;
  readonly status: 'active' | 'retired';
  readonly notAfter: string;
  readonly createdAt: string;
}

/** Storage for CA certificates and their sealed keys. */
export interface CaStore {
  insert(record: CaRecord): Promise<void>;
  /** Active CAs of a role, newest first. */
  active(role: CaRole): Promise<CaRecord[]>;
}

/**
 * RFC 5280 §5.3.1 CRLReason names. `certificateHold` is left out on purpose: revocation here is
 * permanent, and a hold would need an un-revoke. `removeFromCRL` only exists in delta CRLs, and
 * the CA/AA compromise reasons do not describe a leaf.
 */
export const REVOCATION_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** A certificate this control plane issued. Serials are canonical lowercase hex (see `canonicalSerial`). */
export interface IssuedCertificate {
  readonly serialNumber: string;
  readonly tenant: string;
  readonly spiffeId: string;
  /** Hex subject key identifier of the issuing CA. */
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly certificatePem: string;
  readonly issuedAt: string;
  readonly revokedAt: string | null;
  readonly revocationReason: RevocationReason | null;
}

/** What a CRL entry or an OCSP answer needs about one revoked certificate. */
export interface RevokedCertificate {
  readonly serialNumber: string;
  readonly revokedAt: string;
  readonly reason: RevocationReason;
  readonly notAfter: string;
}

/** Storage for issued certificates, their revocation, and the CRL sequence of each issuing CA. */
export interface CertificateStore {
  insert(record: IssuedCertificate): Promise<void>;
  /** The tenant's certificate with that serial; undefined when the tenant has none (another tenant's is never returned). */
  get(tenant: string, serialNumber: string): Promise<IssuedCertificate | undefined>;
  /** The tenant's certificates for `spiffeId` with notAfter later than `now`, oldest first. */
  unexpiredFor(tenant: string, spiffeId: string, now: string): Promise<IssuedCertificate[]>;
  /**
   * Marks those of `serialNumbers` that belong to `tenant` and are not yet revoked as revoked at
   * `at` for `reason`; returns the serials this call revoked. An earlier revocation is kept as it was.
   */
  revoke(tenant: string, serialNumbers: readonly string[], at: string, reason: RevocationReason): Promise<string[]>;
  /** Any tenant's certificate from `issuer` with that serial, for OCSP; undefined when never issued. */
  byIssuer(issuer: string, serialNumber: string): Promise<IssuedCertificate | undefined>;
  /** Revoked certificates of `issuer` not yet expired at `now`, by serial: the entries of its CRL. */
  revokedUnexpired(issuer: string, now: string): Promise<RevokedCertificate[]>;
  /** Bumps the issuer's CRL revision; call in the transaction that revokes, so caches see it commit. */
  touchRevocations(issuer: string, at: string): Promise<void>;
  /** The issuer's CRL revision (0 before the first revocation). */
  crlRevision(issuer: string): Promise<number>;
  /** Allocates the issuer's next CRL number, atomically, starting at 1. */
  nextCrlNumber(issuer: string, at: string): Promise<number>;
}
