/**
 * The CRLs (RFC 5280 §5) of the online issuing CA, signed by the intermediate: a complete CRL
 * listing its revoked certificates until they expire, and a delta CRL (§5.2.4) listing those
 * revoked since an older complete CRL, so that a relying party keeps a large base for its full
 * validity and polls only the small delta.
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

/**
 * How long a delta CRL is valid. It is what relying parties poll for fresh revocations, so it is
 * short, like an OCSP answer (ocsp.ts OCSP_VALIDITY_MS).
 */
export const DELTA_CRL_VALIDITY_MS = 300_000;
const DELTA_CRL_REFRESH_MS = DELTA_CRL_VALIDITY_MS / 2;

const CRL_NUMBER_OID = '2.5.29.20';
const REASON_CODE_OID = '2.5.29.21';
const DELTA_CRL_INDICATOR_OID = '2.5.29.27';
const FRESHEST_CRL_OID = '2.5.29.46';

export interface CrlParams {
  readonly number: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: readonly RevokedCertificate[];
  /** Makes this a delta CRL on the complete CRL with that number (§5.2.4 Delta CRL Indicator). */
  readonly baseCrlNumber?: number;
  /** On a complete CRL: where its delta CRL is published (§5.2.6 Freshest CRL). */
  readonly freshestCrlUrl?: string;
}

/** Extension (§4.1): the criticality flag is left out, not written false, when it is false (X.690 DER). */
const extension = (oid: string, critical: boolean, value: Uint8Array): Buffer =>
  critical ? der.sequence(der.oid(oid), Buffer.from([0x01, 0x01, 0xff]), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));

/** CRLDistributionPoints syntax (§4.2.1.13) with one fullName URI, which Freshest CRL reuses (§5.2.6). */
const distributionPoint = (url: string): Buffer => der.sequence(der.sequence(der.tlv(0xa0, der.tlv(0xa0, der.tlv(0x86, Buffer.from(url, 'ascii'))))));

/**
 * Signs a CRL v2 (RFC 5280 §5.1) over `entries` and returns its DER: the issuer name exactly as
 * in the CA's certificate (§5.1.2.3), the AKI (§5.2.1, MUST) and the CRL number (§5.2.3, MUST),
 * and per entry the revocation date and a reasonCode unless the reason is `unspecified` (§5.3.1
 * says to leave it out then). A delta CRL adds the critical Delta CRL Indicator (§5.2.4, so that
 * a client that does not understand deltas refuses it rather than take it for complete); a
 * complete CRL may name its delta in a non-critical Freshest CRL extension (§5.2.6).
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
      extension(CRL_NUMBER_OID, false, der.integer(params.number)),
      ...(params.baseCrlNumber === undefined ? [] : [extension(DELTA_CRL_INDICATOR_OID, true, der.integer(params.baseCrlNumber))]),
      ...(params.freshestCrlUrl === undefined ? [] : [extension(FRESHEST_CRL_OID, false, distributionPoint(params.freshestCrlUrl))]),
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
  /** For a delta CRL: the number of the complete CRL it extends. */
  readonly baseCrlNumber?: number;
}

/** A complete CRL a delta may name as its base: its number and the change-log position it was built at. */
export interface CrlBase {
  readonly number: number;
  readonly eventSequence: number;
  readonly nextUpdate: string;
}

/**
 * Storage of the complete CRLs relying parties may still hold, shared by every replica, and of
 * what was revoked after each (read from the PKI change log, events.ts).
 */
export interface CrlBaseStore {
  /** The change log's last sequence; read it before the entries of a complete CRL. */
  changeSequence(): Promise<number>;
  /** Records a complete CRL of `issuer`; drops bases whose nextUpdate is before `now`. */
  recordBase(issuer: string, base: CrlBase, now: string): Promise<void>;
  /** The lowest-numbered base of `issuer` whose nextUpdate is after `now`; undefined when none. */
  oldestLiveBase(issuer: string, now: string): Promise<CrlBase | undefined>;
  /** Certificates of `issuer` revoked by change-log entries after `eventSequence` and not expired at `now`, by serial. */
  revokedSince(issuer: string, eventSequence: number, now: string): Promise<RevokedCertificate[]>;
}

export interface DeltaCrlOptions {
  readonly bases: CrlBaseStore;
  /** Where the delta CRL is served; complete CRLs point at it (§5.2.6 Freshest CRL). */
  readonly deltaUrl: string;
}

/**
 * Serves the issuing CA's current complete CRL, built once and reused until a revocation commits
 * (seen through the issuer's CRL revision in the store, so every replica notices) or half its
 * validity has passed, and with `delta` its delta CRL the same way. Each build takes the next
 * persisted CRL number, so numbers only grow, across restarts and replicas alike, and complete
 * and delta CRLs share one sequence as §5.2.4 requires. Expired certificates are left out (§3.3:
 * an entry may be removed once the certificate has expired).
 *
 * The delta names the oldest complete CRL still within its nextUpdate (whichever replica built
 * it) and lists every certificate revoked since: a relying party holding that base or any later
 * one finds every unexpired revoked certificate in base ∪ delta (§5.2.4), and OpenSSL accepts a
 * delta whose base number is at most that of the complete CRL it holds.
 */
export class CrlPublisher {
  readonly #issuer: CertificateAuthority;
  readonly #issuerId: string;
  readonly #store: CertificateStore;
  readonly #clock: Clock;
  readonly #delta: DeltaCrlOptions | undefined;
  #cached: { crl: PublishedCrl; revision: number } | undefined;
  #building: Promise<PublishedCrl> | undefined;
  #cachedDelta: { crl: PublishedCrl; revision: number; base: CrlBase } | undefined;
  #buildingDelta: Promise<PublishedCrl> | undefined;

  constructor(issuer: CertificateAuthority, store: CertificateStore, clock: Clock, delta?: DeltaCrlOptions) {
    this.#issuer = issuer;
    this.#issuerId = issuerKeyId(issuer);
    this.#store = store;
    this.#clock = clock;
    this.#delta = delta;
  }

  async current(): Promise<PublishedCrl> {
    const revision = await this.#store.crlRevision(this.#issuerId);
    const cached = this.#cached;
    if (cached && cached.revision === revision && this.#fresh(cached.crl, CRL_REFRESH_MS)) return cached.crl;
    // Concurrent requests share one build rather than each taking a CRL number.
    this.#building ??= this.#build(revision).finally(() => {
      this.#building = undefined;
    });
    return this.#building;
  }

  /**
   * The delta CRL on the oldest complete CRL still valid (building a complete one first when none
   * is). Rebuilt when a revocation commits, when its base lapses, or at half its validity.
   *
   * @throws RangeError when the publisher was made without delta options
   */
  async delta(): Promise<PublishedCrl> {
    const delta = this.#delta;
    if (!delta) throw new RangeError('this CRL publisher has no delta CRL');
    const revision = await this.#store.crlRevision(this.#issuerId);
    const cached = this.#cachedDelta;
    const now = this.#clock.now();
    if (cached && cached.revision === revision && Date.parse(cached.base.nextUpdate) > now.getTime() && this.#fresh(cached.crl, DELTA_CRL_REFRESH_MS)) return cached.crl;
    this.#buildingDelta ??= this.#buildDelta(delta.bases, revision).finally(() => {
      this.#buildingDelta = undefined;
    });
    return this.#buildingDelta;
  }

  #fresh(crl: PublishedCrl, refreshMs: number): boolean {
    const now = this.#clock.now().getTime();
    return now - crl.thisUpdate.getTime() < refreshMs && now >= crl.thisUpdate.getTime();
  }

  async #build(revision: number): Promise<PublishedCrl> {
    const thisUpdate = this.#clock.now();
    // Read before the entries: a revocation logged after this position may be missing from them,
    // so a delta on this base lists everything after it.
    const eventSequence = this.#delta ? await this.#delta.bases.changeSequence() : 0;
    const entries = await this.#store.revokedUnexpired(this.#issuerId, thisUpdate.toISOString());
    const nextUpdate = this.#nextUpdate(thisUpdate, CRL_VALIDITY_MS);
    const published = await this.#sign({ thisUpdate, nextUpdate, entries, ...(this.#delta ? { freshestCrlUrl: this.#delta.deltaUrl } : {}) });
    await this.#delta?.bases.recordBase(this.#issuerId, { number: published.number, eventSequence, nextUpdate: nextUpdate.toISOString() }, thisUpdate.toISOString());
    this.#cached = { crl: published, revision };
    return published;
  }

  async #buildDelta(bases: CrlBaseStore, revision: number): Promise<PublishedCrl> {
    let base = await bases.oldestLiveBase(this.#issuerId, this.#clock.now().toISOString());
    if (!base) {
      const complete = await this.current();
      base = await bases.oldestLiveBase(this.#issuerId, this.#clock.now().toISOString());
      // Only when the clock passed the fresh base's nextUpdate meanwhile: name it all the same.
      base ??= { number: complete.number, eventSequence: 0, nextUpdate: complete.nextUpdate.toISOString() };
    }
    const thisUpdate = this.#clock.now();
    const entries = await bases.revokedSince(this.#issuerId, base.eventSequence, thisUpdate.toISOString());
    const published = await this.#sign({ thisUpdate, nextUpdate: this.#nextUpdate(thisUpdate, DELTA_CRL_VALIDITY_MS), entries, baseCrlNumber: base.number });
    this.#cachedDelta = { crl: published, revision, base };
    return published;
  }

  #nextUpdate(thisUpdate: Date, validityMs: number): Date {
    return new Date(Math.min(thisUpdate.getTime() + validityMs, this.#issuer.certificate.notAfter.getTime()));
  }

  async #sign(params: Omit<CrlParams, 'number'>): Promise<PublishedCrl> {
    const number = await this.#store.nextCrlNumber(this.#issuerId, params.thisUpdate.toISOString());
    const crl = await buildCrl(this.#issuer, { ...params, number });
    return {
      der: crl,
      pem: `${x509.PemConverter.encode(crl, 'X509 CRL')}\n`,
      number,
      thisUpdate: params.thisUpdate,
      nextUpdate: params.nextUpdate,
      entries: params.entries.length,
      ...(params.baseCrlNumber === undefined ? {} : { baseCrlNumber: params.baseCrlNumber }),
    };
  }
}
