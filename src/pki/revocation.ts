/**
 * Revoking issued certificates, by serial or by SPIFFE ID, always within one tenant: a serial
 * another tenant owns is indistinguishable from one that was never issued.
 */
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import type { PkiEventStore } from './events.js';
import { canonicalSerial } from './issuer.js';
import type { CertificateStore, RevocationReason } from './store.js';

/** RFC 5280 §5.3.1 CRLReason values. */
export const REVOCATION_REASON_CODES: Readonly<Record<RevocationReason, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
};

export type RevocationTarget = { readonly serialNumber: string } | { readonly spiffeId: string };

export interface RevocationResult {
  /** Every certificate the target names, revoked now or earlier, by serial. */
  readonly serialNumbers: readonly string[];
  /** The subset this call revoked (the others were revoked before and keep their time and reason). */
  readonly newlyRevoked: readonly string[];
  readonly revokedAt: string;
  /** Issuers whose CRL changed. */
  readonly issuers: readonly string[];
}

/**
 * Revokes the tenant's certificate with that serial (revoking it again is a no-op that succeeds),
 * or every unexpired certificate of that SPIFFE ID in the tenant. Run it inside the transaction
 * that also writes the audit event; it bumps each affected issuer's CRL revision there too and,
 * given the change `log`, appends the revocation to it, so that every replica's event stream and
 * delta CRL hear of it once it commits (a call that revokes nothing new appends nothing).
 *
 * @throws PkiError `pki.certificate_not_found` when the tenant has no such certificate (or, for
 *   a SPIFFE ID, none that is unexpired)
 */
export async function revokeCertificates(
  store: CertificateStore,
  clock: Clock,
  tenant: string,
  target: RevocationTarget,
  reason: RevocationReason,
  log?: PkiEventStore,
): Promise<RevocationResult> {
  const now = clock.now().toISOString();
  let certs: { serialNumber: string; issuer: string }[];
  if ('serialNumber' in target) {
    const serial = canonicalSerial(target.serialNumber);
    const cert = serial === undefined ? undefined : await store.get(tenant, serial);
    if (!cert) throw new PkiError('pki.certificate_not_found', `this tenant has no certificate with serial ${target.serialNumber}`);
    certs = [cert];
  } else {
    certs = await store.unexpiredFor(tenant, target.spiffeId, now);
    if (certs.length === 0) throw new PkiError('pki.certificate_not_found', `this tenant has no unexpired certificate for ${target.spiffeId}`);
  }
  const newlyRevoked = await store.revoke(
    tenant,
    certs.map((c) => c.serialNumber),
    now,
    reason,
  );
  const fresh = new Set(newlyRevoked);
  const issuers = [...new Set(certs.filter((c) => fresh.has(c.serialNumber)).map((c) => c.issuer))].sort();
  for (const issuer of issuers) await store.touchRevocations(issuer, now);
  const serialNumbers = certs.map((c) => c.serialNumber).sort();
  if (log && newlyRevoked.length > 0) {
    const spiffeId = 'spiffeId' in target ? target.spiffeId : null;
    const revoked = certs.filter((c) => fresh.has(c.serialNumber)).map((c) => ({ issuer: c.issuer, serialNumber: c.serialNumber }));
    await log.append(tenant, { type: 'revoked', serial_numbers: serialNumbers, spiffe_id: spiffeId, revoked_at: now }, revoked, now);
  }
  return { serialNumbers, newlyRevoked, revokedAt: now, issuers };
}
