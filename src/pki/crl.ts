/**
 * The CRL (RFC 5280 §5) of the online issuing CA: one full CRL, signed by the intermediate,
 * listing its revoked certificates until they expire.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Clock } from '../core/clock.js';
import type { CertificateAuthority } from './ca.js';
import { issuerKeyId } from './issuer.js';
import { signingAlgorithmFor } from './keys.js';
import { REVOCATION_REASON_CODES } from './revocation.js';
import type { CertificateStore, RevokedCertificate } from './store.js';

/**
 * How long a CRL is valid (nextUpdate − thisUpdate). SVIDs live an hour by default and a day at
 * most, so a relying party that caches a CRL for its full validity must not miss a revocation for
 * long; an hour matches the default SVID lifetime.
 */
export const CRL_VALIDITY_MS = 3_600_000;
/** A cached CRL is rebuilt once half its validity has passed, so clients never fetch one about to lapse. */
const CRL_REFRESH_MS = CRL_VALIDITY_MS / 2;

const CRL_NUMBER_OID = '2.5.29.20';

/** DER INTEGER (X.690 §8.3) of a non-negative safe integer: minimal big-endian octets. */
function derInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a CRL number: ${n}`);
  const octets: number[] = [];
  for (let v = n; octets.length === 0 || v > 0; v = Math.floor(v / 256)) octets.unshift(v % 256);
  if ((octets[0] ?? 0) >= 0x80) octets.unshift(0);
  return Uint8Array.from([0x02, octets.length, ...octets]);
}

export interface CrlParams {
  readonly number: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: readonly RevokedCertificate[];
}

/**
 * Signs a CRL v2 over `entries`: the issuer name byte-for-byte as in the CA's certificate
 * (§5.1.2.3), the AKI (§5.2.1, MUST) and the CRL number (§5.2.3, MUST), and per entry the
 * revocation date and a reasonCode unless the reason is `unspecified` (§5.3.1 says omit it then).
 */
export async function buildCrl(issuer: CertificateAuthority, params: CrlParams): Promise<x509.X509Crl> {
  const ski = issuerKeyId(issuer);
  return x509.X509CrlGenerator.create({
    issuer: issuer.certificate.subjectName,
    thisUpdate: params.thisUpdate,
    nextUpdate: params.nextUpdate,
    signingKey: issuer.privateKey,
    signingAlgorithm: signingAlgorithmFor(issuer.algorithm),
    extensions: [
      new x509.AuthorityKeyIdentifierExtension(ski),
      new x509.Extension(CRL_NUMBER_OID, false, derInteger(params.number)),
    ],
    entries: params.entries.map((e) => ({
      serialNumber: e.serialNumber,
      revocationDate: new Date(e.revokedAt),
      ...(e.reason === 'unspecified' ? {} : { reason: REVOCATION_REASON_CODES[e.reason] as x509.X509CrlReason }),
    })),
  });
}

export interface PublishedCrl {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly number: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
}

/**
 * Serves the issuing CA's current CRL, built once and reused until a revocation commits (seen
 * through the issuer's CRL revision in the store, so every replica notices) or half its
 * validity has passed. Each build takes the next persisted CRL number, so numbers only grow,
 * across restarts and replicas alike. Expired certificates are left out (§3.3: an entry may be
 * removed once the certificate has expired).
 */
export class CrlPublisher {
  readonly #issuer: CertificateAuthority;
  readonly #issuerId: string;
  readonly #store: CertificateStore;
  readonly #clock: Clock;
  #cached: { crl: PublishedCrl; revision: number } | undefined;
  #building: Promise<PublishedCrl> | undefined;

  constructor(issuer: CertificateAuthority, store: CertificateStore, clock: Clock) {
    this.#issuer = issuer;
    this.#issuerId = issuerKeyId(issuer);
    this.#store = store;
    this.#clock = clock;
  }

  async current(): Promise<PublishedCrl> {
    const revision = await this.#store.crlRevision(this.#issuerId);
    const cached = this.#cached;
    const now = this.#clock.now().getTime();
    if (cached && cached.revision === revision && now - cached.crl.thisUpdate.getTime() < CRL_REFRESH_MS && now >= cached.crl.thisUpdate.getTime()) {
      return cached.crl;
    }
    // Concurrent requests share one build rather than each taking a CRL number.
    this.#building ??= this.#build(revision).finally(() => {
      this.#building = undefined;
    });
    return this.#building;
  }

  async #build(revision: number): Promise<PublishedCrl> {
    const thisUpdate = this.#clock.now();
    const entries = await this.#store.revokedUnexpired(this.#issuerId, thisUpdate.toISOString());
    const number = await this.#store.nextCrlNumber(this.#issuerId, thisUpdate.toISOString());
    const nextUpdate = new Date(Math.min(thisUpdate.getTime() + CRL_VALIDITY_MS, this.#issuer.certificate.notAfter.getTime()));
    const crl = await buildCrl(this.#issuer, { number, thisUpdate, nextUpdate, entries });
    const published: PublishedCrl = { der: new Uint8Array(crl.rawData), pem: `${crl.toString('pem')}\n`, number, thisUpdate, nextUpdate, entries: entries.length };
    this.#cached = { crl: published, revision };
    return published;
  }
}
