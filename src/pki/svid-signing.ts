/**
 * Signing a workload's CSR into an X.509-SVID: which SPIFFE ID a tenant may issue, how long it
 * may live, and the record kept of it. Who may obtain which ID is Cedar's decision and happens
 * between {@link resolveSvidIdentity} and {@link signSvidFromCsr}; this module never decides that.
 */
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { type CertificateAuthority, issueSvidDer } from './ca.js';
import { issuerKeyId } from './issuer.js';
import { parseSpiffeId, type SpiffeId } from './spiffe.js';
import type { IssuedCertificate } from './store.js';
import { readSvidRequest, type SvidRequest } from './svid-request.js';
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

/**
 * The SPIFFE ID to issue for `request`, before authorization: the body's `explicit` ID when
 * given, which the CSR's URI SAN, if it has one, must equal; otherwise the CSR's URI SAN;
 * otherwise `fallback` (the calling workload's own ID, for a renewal). Whichever it is then
 * passes {@link svidIdentityFor}, so an ID taken from the CSR is held to the tenant's trust
 * domain like any other, and Cedar's `pki:sign` decides on it next.
 *
 * @throws PkiError `pki.csr_spiffe_id_mismatch`, `pki.spiffe_id_invalid` (also when there is no
 *   ID at all), `pki.spiffe_id_forbidden`
 */
export function resolveSvidIdentity(request: SvidRequest, trustDomain: string, ids: { readonly explicit?: string; readonly fallback?: string }): SpiffeId {
  if (ids.explicit !== undefined) {
    const spiffeId = svidIdentityFor(ids.explicit, trustDomain);
    checkRequestedIdentity(request, spiffeId);
    return spiffeId;
  }
  if (request.spiffeId !== undefined) {
    try {
      return svidIdentityFor(request.spiffeId, trustDomain);
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      throw new PkiError(err.code, `The CSR's URI SAN: ${err.message}`, { cause: err });
    }
  }
  if (ids.fallback !== undefined) return svidIdentityFor(ids.fallback, trustDomain);
  throw new PkiError('pki.spiffe_id_invalid', 'spiffe_id is required unless the CSR carries it as its URI SAN or a workload renews its own identity');
}

/** @throws PkiError `pki.csr_spiffe_id_mismatch` when the CSR names another SPIFFE ID than the one to issue */
function checkRequestedIdentity(request: SvidRequest, spiffeId: SpiffeId): void {
  if (request.spiffeId !== undefined && request.spiffeId !== spiffeId) {
    throw new PkiError('pki.csr_spiffe_id_mismatch', `The CSR's URI SAN ${request.spiffeId} is not the SPIFFE ID to issue, ${spiffeId}`, {
      details: { csr_spiffe_id: request.spiffeId, spiffe_id: spiffeId },
    });
  }
}

/**
 * CSR DNS SANs are honoured only when granted: each must be among `granted` (a registration
 * entry's `dns_names`, set by an administrator), as Vault's PKI roles allow a requested name only
 * within their `allowed_domains`. `POST /v1/pki/sign` grants none: an SVID is trusted by whoever
 * trusts the tenant's bundle, so a DNS name in it must have been vetted by someone other than the
 * requester. Refused rather than dropped, so that a workload expecting the name learns now and
 * not at its first TLS hostname check.
 *
 * @throws PkiError `pki.csr_san_not_allowed`
 */
function checkRequestedDnsNames(request: SvidRequest, granted: readonly string[]): void {
  const allowed = new Set(granted.map((n) => n.toLowerCase()));
  const refused = request.dnsNames.filter((n) => !allowed.has(n));
  if (refused.length > 0) {
    // The names are the requester's bytes: shown printable and bounded in the error and the audit log.
    const shown = refused.slice(0, 5).map((n) => (n.length > 80 ? `${n.slice(0, 80)}…` : n).replace(/[^\x21-\x7e…]/g, '?'));
    throw new PkiError(
      'pki.csr_san_not_allowed',
      `The CSR asks for DNS names that are not granted to this identity: ${shown.join(', ')}${refused.length > shown.length ? ', …' : ''}. DNS SANs come from a registration entry's dns_names`,
      { details: { types: ['dNSName'] } },
    );
  }
}

interface SignSvidCommon {
  readonly tenant: string;
  readonly spiffeId: SpiffeId;
  readonly ttlMs: number;
  readonly clock: Clock;
  /** Base URL of this server (config `advertise_addr`); the SVID's CRL DP and OCSP URL hang off it. */
  readonly advertiseAddr: string;
  /** DNS SANs next to the SPIFFE ID (a registration entry's `dns_names`); the only DNS names a CSR may ask for. */
  readonly dnsNames?: readonly string[];
}

/** The CSR as PEM, or as {@link readSvidRequest} already read it (a route that needed its URI SAN first). */
export type SignSvidOptions = SignSvidCommon & ({ readonly csrPem: string } | { readonly request: SvidRequest });

export interface SignedSvid {
  readonly der: Uint8Array;
  readonly record: IssuedCertificate;
  /** Parsed on first use: the issuance path itself never needs the object model. */
  readonly certificate: x509.X509Certificate;
}

/**
 * Issues an SVID for `spiffeId` over the CSR's public key, once the CSR has passed
 * {@link readSvidRequest} (proof of possession, no CA request, at most one URI SAN) and asks for
 * nothing it may not have: its URI SAN, if any, must be `spiffeId` and its DNS SANs must be among
 * `dnsNames`. The certificate's extensions are always the server's (`issueSvidDer`); the CSR's
 * subject and any other requested extensions are not copied. Returns the certificate and the
 * record to store in the same transaction as its audit event.
 *
 * @throws PkiError `pki.csr_invalid`, `pki.key_unsupported`, `pki.csr_requests_ca`,
 *   `pki.csr_multiple_uris`, `pki.spiffe_id_invalid`, `pki.csr_spiffe_id_mismatch`,
 *   `pki.csr_san_not_allowed`, `pki.ca_unavailable`
 */
export async function signSvidFromCsr(issuer: CertificateAuthority, options: SignSvidOptions): Promise<SignedSvid> {
  const request = 'request' in options ? options.request : await readSvidRequest(options.csrPem);
  checkRequestedIdentity(request, options.spiffeId);
  checkRequestedDnsNames(request, options.dnsNames ?? []);
  const issued = await issueSvidDer(issuer, {
    publicKey: request.publicKey,
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
