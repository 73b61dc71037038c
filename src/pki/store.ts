/** `cross`: a cross-certificate, a newer root's name and key signed by an older root (root rotation). */
export type CaRole = 'root' | 'intermediate' | 'cross';

/**
 * The life of a CA certificate (see rotation.ts): `prepared` is in the trust bundle but signs
 * nothing yet; `active` signs (one intermediate at a time); `previous` signs nothing but stays
 * trusted, and its CRL and OCSP keep answering, until its last leaf expires; `retired` is gone
 * from the bundle. `requested` is an intermediate key whose CSR an external root has yet to sign
 * (its certificatePem holds the CSR). Roots and cross-certificates are `active` or `retired`.
 */
export type CaStatus = 'requested' | 'prepared' | 'active' | 'previous' | 'retired';

export interface CaRecord {
  readonly id: string;
  readonly tenant: string;
  readonly role: CaRole;
  readonly certificatePem: string;
  /** Barrier ciphertext of the PKCS#8 key; null when the key lives outside the server. */
  readonly privateKey: string | null;
  readonly algorithm: string;
  readonly status: CaStatus;
  readonly notAfter: string;
  readonly createdAt: string;
  /** For a `prepared` intermediate: when it may start signing. */
  readonly activateAfter: string | null;
}

/** Storage for CA certificates, their sealed keys, their rotation state and the bundle's sequence. */
export interface CaStore {
  insert(record: CaRecord): Promise<void>;
  /** Active CAs of a role, newest first. */
  active(role: CaRole): Promise<CaRecord[]>;
  /** Every CA certificate that is neither requested nor retired, oldest first: what the trust bundle is made of. */
  unretired(): Promise<CaRecord[]>;
  /** Records in `status`, oldest first. */
  withStatus(status: CaStatus): Promise<CaRecord[]>;
  /** The record with that id; undefined when there is none. */
  get(id: string): Promise<CaRecord | undefined>;
  /**
   * Moves the record from status `from` to `to`; returns false (changing nothing) when it is not
   * in `from`, so that two replicas racing to make the same transition do it once.
   */
  transition(id: string, from: CaStatus, to: CaStatus): Promise<boolean>;
  /** Replaces the sealed private key (null removes it from the server). */
  setPrivateKey(id: string, sealed: string | null): Promise<void>;
  /**
   * Turns a `requested` record into a `prepared` one with its signed certificate; false (changing
   * nothing) when it is no longer requested.
   */
  installCertificate(id: string, certificatePem: string, notAfter: string, activateAfter: string): Promise<boolean>;
  /** The trust bundle's sequence number (0 before the first change). */
  bundleSequence(): Promise<number>;
  /** Increments the bundle's sequence; call in the transaction that changes the trusted set. */
  bumpBundleSequence(at: string): Promise<number>;
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
  /** The latest notAfter of any certificate `issuer` issued (ISO 8601); undefined when it issued none. */
  lastExpiry(issuer: string): Promise<string | undefined>;
}
