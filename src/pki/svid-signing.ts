/**
 * Signing a workload's CSR into an X.509-SVID: which SPIFFE ID a tenant may issue, how long it
 * may live, and the record kept of it. Who may obtain which ID is Cedar's decision and happens
 * between {@link svidIdentityFor} and {@link signSvidFromCsr}; this module never decides that.
 */
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { type CertificateAuthority, issueSvidDer, parseCsr } from './ca.js';
import { issuerKeyId } from './issuer.js';
import { parseSpiffeId, type SpiffeId } from './spiffe.js';
import type { IssuedCertificate } from './store.js';
import * as x509 from '@peculiar/x509';

export const DEFAULT_SVID_TTL_MS = 3_600_000;
/** Below a second the clock-skew allowance dominates and the certificate is useless. */
const MIN_SVID_TTL_MS = 1_000;

/**
 * The TTL to issue with: the default (1h, or the maximum when that is lower) when none is asked
 * for, otherwise the requested duration, which must lie within [1s, max].
 *
 * @throws PkiError `pki.ttl_invalid`
 */
export function resolveSvidTtl(requested: string | undefined, maxMs: number): number {
  if (requested === undefined) return Math.min(DEFAULT_SVID_TTL_MS, maxMs);
  const ms = parseDuration(requested);
  if (ms === undefined) throw new PkiError('pki.ttl_invalid', 'ttl must be a duration such as "90s", "10m", "1h" or a number of seconds');
  if (ms < MIN_SVID_TTL_MS) throw new PkiError('pki.ttl_invalid', 'ttl must be at least 1s');
  if (ms > maxMs) throw new PkiError('pki.ttl_invalid', `ttl ${requested} exceeds the maximum of ${maxMs / 1000}s`, { details: { max_ttl_seconds: maxMs / 1000 } });
  return ms;
}

/**
 * The SPIFFE ID to issue: `requested`, which must be a leaf ID (with a path, X509-SVID §3.1) in
 * `trustDomain`, the addressed tenant's. A tenant never issues into another trust domain, whatever
 * its policies say: that would let one tenant mint identities another tenant's services trust.
 *
 * @throws PkiError `pki.spiffe_id_invalid`, `pki.spiffe_id_forbidden`
 */
export function svidIdentityFor(requested: string, trustDomain: string): SpiffeId {
  const parsed = parseSpiffeId(requested);
  if (parsed.path === '') throw new PkiError('pki.spiffe_id_invalid', `An SVID's SPIFFE ID must have a path (X509-SVID §3.1): ${parsed.id}`);
  if (parsed.trustDomain !== trustDomain) {
    throw new PkiError('pki.spiffe_id_forbidden', `${parsed.id} is not in this tenant's trust domain ${trustDomain}`);
  }
  return parsed.id;
}

export interface SignSvidOptions {
  readonly tenant: string;
  readonly spiffeId: SpiffeId;
  readonly csrPem: string;
  readonly ttlMs: number;
  readonly clock: Clock;
  /** Base URL of this server (config `advertise_addr`); the SVID's CRL DP and OCSP URL hang off it. */
  readonly advertiseAddr: string;
  /** DNS SANs next to the SPIFFE ID (a registration entry's `dns_names`). */
  readonly dnsNames?: readonly string[];
}

export interface SignedSvid {
  readonly der: Uint8Array;
  readonly record: IssuedCertificate;
  /** Parsed on first use: the issuance path itself never needs the object model. */
  readonly certificate: x509.X509Certificate;
}

/**
 * Proves the CSR's key possession and issues an SVID for `spiffeId` over the CSR's public key
 * only: the CSR's subject, SANs and extensions (a `cA: true` request included) are ignored, so
 * the leaf always has the constraints of `issueSvid`. Returns the certificate and the record to
 * store in the same transaction as its audit event.
 *
 * @throws PkiError `pki.csr_invalid`, `pki.key_unsupported`, `pki.ca_unavailable`
 */
export async function signSvidFromCsr(issuer: CertificateAuthority, options: SignSvidOptions): Promise<SignedSvid> {
  const publicKey = await parseCsr(options.csrPem);
  const issued = await issueSvidDer(issuer, {
    publicKey,
    spiffeId: options.spiffeId,
    ...(options.dnsNames === undefined ? {} : { dnsNames: options.dnsNames }),
    clock: options.clock,
    ttlMs: options.ttlMs,
    crlDistributionUrl: `${options.advertiseAddr}/v1/pki/issuers/${issuerKeyId(issuer)}/crl`,
    ocspUrl: `${options.advertiseAddr}/v1/pki/ocsp`,
  });
  const record: IssuedCertificate = {
    serialNumber: issued.serialNumber,
    tenant: options.tenant,
    spiffeId: options.spiffeId,
    issuer: issuerKeyId(issuer),
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
    certificatePem: certificatePem(issued.der),
    issuedAt: options.clock.now().toISOString(),
    revokedAt: null,
    revocationReason: null,
  };
  let parsed: x509.X509Certificate | undefined;
  return {
    der: issued.der,
    record,
    get certificate() {
      parsed ??= new x509.X509Certificate(issued.der);
      return parsed;
    },
  };
}

/** RFC 7468 §5.1: base64 in 64-column lines under the CERTIFICATE label, no trailing newline (as stored before). */
function certificatePem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----`;
}
