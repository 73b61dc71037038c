/**
 * The CRL (RFC 5280 §5) of the online issuing CA: one full CRL, signed by the intermediate,
 * listing its revoked certificates until they expire.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Clock } from '../core/clock.js';
import type { CertificateAuthority } from './ca.js';
import * as der from './der.js';
import { issuerKeyId } from './issuer.js';
import { signatureAlgorithmIdentifier, signWith } from './keys.js';
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
const REASON_CODE_OID = '2.5.29.21';

export interface CrlParams {
  readonly number: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: readonly RevokedCertificate[];
}

/**
 * Signs a CRL v2 (RFC 5280 §5.1) over `entries` and returns its DER: the issuer name exactly as
 * in the CA's certificate (§5.1.2.3), the AKI (§5.2.1, MUST) and the CRL number (§5.2.3, MUST),
 * and per entry the revocation date and a reasonCode unless the reason is `unspecified` (§5.3.1
 * says to leave it out then).
 *
 * Written with the linear DER writer of der.ts: @peculiar/x509's CRL generator is quadratic in
 * the number of entries, and a CA with many short-lived revoked SVIDs has many.
 */
export async function buildCrl(issuer: CertificateAuthority, params: CrlParams): Promise<Uint8Array> {
  const algorithm = signatureAlgorithmIdentifier(issuer.algorithm);
  // Entries repeat their reason extension and, revoked in bulk, their time: encode each once.
  const reasons = new Map<string, Buffer>();
  const times = new Map<string, Buffer>();
  const revoked = params.entries.map((e) => {
    let time = times.get(e.revokedAt);
    if (time === undefined) times.set(e.revokedAt, (time = der.time(new Date(e.revokedAt))));
    if (e.reason === 'unspecified') return der.sequence(der.integerFromHex(e.serialNumber), time);
    let reason = reasons.get(e.reason);
    if (reason === undefined) {
      reason = der.sequence(der.sequence(der.oid(REASON_CODE_OID), der.octetString(der.enumerated(REVOCATION_REASON_CODES[e.reason]))));
      reasons.set(e.reason, reason);
    }
    return der.sequence(der.integerFromHex(e.serialNumber), time, reason);
  });
  const extensions = der.explicit(
    0,
    der.sequence(
      new Uint8Array(new x509.AuthorityKeyIdentifierExtension(issuerKeyId(issuer)).rawData),
      der.sequence(der.oid(CRL_NUMBER_OID), der.octetString(der.integer(params.number))),
    ),
  );
  const tbs = der.sequence(
    der.integer(1), // v2: required because of the extensions (§5.1.2.1)
    algorithm,
    new Uint8Array(issuer.certificate.subjectName.toArrayBuffer()),
    der.time(params.thisUpdate),
    der.time(params.nextUpdate),
    ...(revoked.length === 0 ? [] : [der.sequenceOf(revoked)]), // absent, not empty, when none (§5.1.2.6)
    extensions,
  );
  return der.sequence(tbs, algorithm, der.bitString(signWith(issuer.algorithm, issuer.privateKey, tbs)));
}

export interface PublishedCrl {
  readonly der: Uint8Array;
  /** RFC 7468 §6 `X509 CRL` label (what `openssl crl` reads). */
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
    const published: PublishedCrl = { der: crl, pem: `${x509.PemConverter.encode(crl, 'X509 CRL')}\n`, number, thisUpdate, nextUpdate, entries: entries.length };
    this.#cached = { crl: published, revision };
    return published;
  }
}
