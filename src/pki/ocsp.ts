/**
 * An OCSP responder (RFC 6960) for the online issuing CA, signing its answers with the CA's own
 * key (§4.2.2.2: the issuing CA may sign directly, so no delegated responder certificate) and
 * naming itself by key hash (§4.2.1 ResponderID byKey).
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
// asn1js is pkijs' own ASN.1 layer: pkijs takes and returns its objects, so it comes with pkijs.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import type { CertificateAuthority } from './ca.js';
import { canonicalSerial } from './issuer.js';
import { REVOCATION_REASON_CODES } from './revocation.js';
import type { IssuedCertificate } from './store.js';

const ID_PKIX_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const ID_PKIX_OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';

/** CertID hash algorithms accepted (RFC 6960 §4.1.1; SHA-1 is what most clients still send). */
const CERT_ID_HASHES: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** More single requests than any client sends; bounds the work one public request can cause. */
export const MAX_OCSP_REQUESTS = 16;
/** RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)); with its own tag and length, 34 octets. */
const MAX_NONCE_EXTENSION_OCTETS = 34;
/**
 * How long a relying party may cache an answer. The responder's own cache drops an answer at half
 * this or at the next revocation of its issuer, whichever comes first.
 */
export const OCSP_VALIDITY_MS = 300_000;

/** RFC 6960 §4.2.1 OCSPResponseStatus. */
const OCSP_SUCCESSFUL = 0;
const OCSP_MALFORMED_REQUEST = 1;

/** The issuer's CRL revision in the store; it changes whenever one of its certificates is revoked. */
export type RevocationRevision = () => Promise<number>;

interface CachedAnswer {
  readonly answer: OcspAnswer;
  readonly revision: number;
  readonly producedAt: number;
  readonly freshUntil: number;
}

/** Bounds the memory of pre-signed answers (about 1 KiB each); past it the cache starts over. */
const MAX_CACHED_ANSWERS = 50_000;

/** Finds a certificate this issuer issued, by canonical serial; undefined when it never did. */
export type CertificateLookup = (serialNumber: string) => Promise<IssuedCertificate | undefined>;

export interface OcspAnswer {
  /** DER OCSPResponse, always: protocol errors are themselves OCSP responses (§2.3). */
  readonly der: Uint8Array;
  /** Set when the request was refused as malformed; the caller logs it. */
  readonly error?: PkiError;
  readonly statuses: readonly ('good' | 'revoked' | 'unknown')[];
}

/** RFC 5280 §4.1.2.5.2 and X.690 DER: GeneralizedTime without fractional seconds. */
const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

/**
 * Parses a DER OCSPRequest defensively: it comes from anyone on the network.
 *
 * @throws PkiError `pki.ocsp_request_invalid`
 */
export function parseOcspRequest(der: Uint8Array): pkijs.OCSPRequest {
  let request: pkijs.OCSPRequest;
  try {
    const asn1 = asn1js.fromBER(der);
    if (asn1.offset === -1 || asn1.offset !== der.byteLength) throw new Error('not exactly one DER element');
    request = new pkijs.OCSPRequest({ schema: asn1.result });
  } catch (err) {
    throw new PkiError('pki.ocsp_request_invalid', 'the body is not a DER OCSPRequest (RFC 6960 §4.1.1)', { cause: err });
  }
  const count = request.tbsRequest.requestList.length;
  if (count === 0 || count > MAX_OCSP_REQUESTS) {
    throw new PkiError('pki.ocsp_request_invalid', `an OCSP request must ask about 1 to ${MAX_OCSP_REQUESTS} certificates, not ${count}`);
  }
  const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === ID_PKIX_OCSP_NONCE);
  if (nonce && nonce.extnValue.valueBlock.valueHexView.byteLength > MAX_NONCE_EXTENSION_OCTETS) {
    throw new PkiError('pki.ocsp_request_invalid', 'the nonce is longer than 32 octets (RFC 8954 §2.1)');
  }
  return request;
}

/** What identifies the issuer in a CertID, per hash algorithm (§4.1.1). */
class IssuerIdentity {
  readonly #nameDer: Buffer;
  readonly #keyBits: Buffer;
  readonly #cache = new Map<string, { name: Buffer; key: Buffer }>();

  constructor(ca: CertificateAuthority) {
    const cert = pkijs.Certificate.fromBER(ca.certificate.rawData);
    this.#nameDer = Buffer.from(cert.subject.toSchema().toBER());
    // The key hash covers the BIT STRING's value without tag, length and unused-bits octet.
    this.#keyBits = Buffer.from(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
  }

  hashes(algorithm: string): { name: Buffer; key: Buffer } {
    let h = this.#cache.get(algorithm);
    if (!h) {
      h = { name: createHash(algorithm).update(this.#nameDer).digest(), key: createHash(algorithm).update(this.#keyBits).digest() };
      this.#cache.set(algorithm, h);
    }
    return h;
  }
}

/**
 * Answers OCSP requests about `issuer`'s certificates: `good` for one it issued and has not
 * revoked, `revoked` with time and reason (the reason left out when `unspecified`, as in the
 * CRL), and `unknown` for a serial it never issued or a CertID naming another issuer (§2.2).
 * A request's nonce (RFC 8954) is echoed; a malformed request gets `malformedRequest`.
 */
export class OcspResponder {
  readonly #issuer: CertificateAuthority;
  readonly #identity: IssuerIdentity;
  readonly #responderKeyHash: Buffer;
  readonly #lookup: CertificateLookup;
  readonly #clock: Clock;
  readonly #revision: RevocationRevision | undefined;
  readonly #cache = new Map<string, CachedAnswer>();

  /**
   * With `revision` (the issuer's CRL revision, which every revocation bumps in the store), answers
   * to requests without a nonce are signed once and served from memory until a revocation commits
   * or half their validity has passed; RFC 5019 §2.2.1 lets a responder pre-produce answers this
   * way. Without it every answer is signed on request.
   */
  constructor(issuer: CertificateAuthority, lookup: CertificateLookup, clock: Clock, revision?: RevocationRevision) {
    this.#issuer = issuer;
    this.#identity = new IssuerIdentity(issuer);
    this.#responderKeyHash = this.#identity.hashes('sha1').key;
    this.#lookup = lookup;
    this.#clock = clock;
    this.#revision = revision;
  }

  /** Whether a CertID hashed with `algorithm` names this responder's CA (§4.1.1). */
  answersFor(algorithm: string, nameHash: Uint8Array, keyHash: Uint8Array): boolean {
    const ours = this.#identity.hashes(algorithm);
    return ours.name.equals(nameHash) && ours.key.equals(keyHash);
  }

  async respond(requestDer: Uint8Array): Promise<OcspAnswer> {
    const key = this.#revision === undefined ? undefined : Buffer.from(requestDer).toString('base64');
    let revision = 0;
    if (key !== undefined) {
      revision = await this.#revision!();
      const hit = this.#cache.get(key);
      if (hit && hit.revision === revision && this.#clock.now().getTime() < hit.freshUntil && this.#clock.now().getTime() >= hit.producedAt) {
        return hit.answer;
      }
    }
    let request: pkijs.OCSPRequest;
    try {
      request = parseOcspRequest(requestDer);
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      const malformed = new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: OCSP_MALFORMED_REQUEST }) });
      return { der: new Uint8Array(malformed.toSchema().toBER()), error: err, statuses: [] };
    }
    const now = wholeSeconds(this.#clock.now());
    const nextUpdate = new Date(now.getTime() + OCSP_VALIDITY_MS);
    const statuses: ('good' | 'revoked' | 'unknown')[] = [];
    const responses: pkijs.SingleResponse[] = [];
    for (const { reqCert } of request.tbsRequest.requestList) {
      const { status, certStatus } = await this.#statusOf(reqCert);
      statuses.push(status);
      responses.push(new pkijs.SingleResponse({ certID: reqCert, certStatus, thisUpdate: now, nextUpdate }));
    }
    const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === ID_PKIX_OCSP_NONCE);
    const basic = new pkijs.BasicOCSPResponse({
      tbsResponseData: new pkijs.ResponseData({
        responderID: new asn1js.OctetString({ valueHex: this.#responderKeyHash }),
        producedAt: now,
        responses,
        ...(nonce ? { responseExtensions: [new pkijs.Extension({ extnID: ID_PKIX_OCSP_NONCE, extnValue: nonce.extnValue.valueBlock.valueHexView.slice().buffer })] } : {}),
      }),
    });
    await basic.sign(this.#issuer.privateKey, 'SHA-256');
    const response = new pkijs.OCSPResponse({
      responseStatus: new asn1js.Enumerated({ value: OCSP_SUCCESSFUL }),
      responseBytes: new pkijs.ResponseBytes({
        responseType: ID_PKIX_OCSP_BASIC,
        response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }),
      }),
    });
    const answer: OcspAnswer = { der: new Uint8Array(response.toSchema().toBER()), statuses };
    // A nonce makes every request unique, and an `unknown` may turn `good` when the serial is
    // issued, which bumps no revision: neither is kept.
    if (key !== undefined && !nonce && !statuses.includes('unknown')) {
      if (this.#cache.size >= MAX_CACHED_ANSWERS) this.#cache.clear();
      this.#cache.set(key, { answer, revision, producedAt: now.getTime(), freshUntil: now.getTime() + OCSP_VALIDITY_MS / 2 });
    }
    return answer;
  }

  async #statusOf(certId: pkijs.CertID): Promise<{ status: 'good' | 'revoked' | 'unknown'; certStatus: asn1js.BaseBlock }> {
    const unknown = { status: 'unknown' as const, certStatus: new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } }) };
    const algorithm = CERT_ID_HASHES[certId.hashAlgorithm.algorithmId];
    if (algorithm === undefined) return unknown;
    if (!this.answersFor(algorithm, certId.issuerNameHash.valueBlock.valueHexView, certId.issuerKeyHash.valueBlock.valueHexView)) return unknown;
    const serial = canonicalSerial(Buffer.from(certId.serialNumber.valueBlock.valueHexView).toString('hex'));
    const cert = serial === undefined ? undefined : await this.#lookup(serial);
    if (!cert) return unknown;
    if (cert.revokedAt === null) {
      return { status: 'good', certStatus: new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } }) };
    }
    const reason = cert.revocationReason ?? 'unspecified';
    // RevokedInfo (§4.2.1) under the IMPLICIT [1] tag: the SEQUENCE's fields directly inside.
    const revokedInfo: asn1js.BaseBlock[] = [new asn1js.GeneralizedTime({ valueDate: wholeSeconds(new Date(cert.revokedAt)) })];
    if (reason !== 'unspecified') {
      revokedInfo.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Enumerated({ value: REVOCATION_REASON_CODES[reason] })] }));
    }
    return { status: 'revoked', certStatus: new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: revokedInfo }) };
  }
}

const identities = new WeakMap<CertificateAuthority, IssuerIdentity>();

/**
 * Which of `issuers` the request's first CertID names (§4.1.1), for routing it to that issuer's
 * responder while a rotation overlap has two; the first issuer when none matches or the request
 * does not parse (its responder then answers `unknown` or `malformedRequest`).
 */
export function issuerOfOcspRequest(issuers: readonly CertificateAuthority[], requestDer: Uint8Array): CertificateAuthority {
  const [first] = issuers;
  if (first === undefined) throw new RangeError('no issuing CA');
  let certId: pkijs.CertID | undefined;
  try {
    certId = parseOcspRequest(requestDer).tbsRequest.requestList[0]?.reqCert;
  } catch {
    return first;
  }
  const algorithm = certId && CERT_ID_HASHES[certId.hashAlgorithm.algorithmId];
  if (!certId || algorithm === undefined) return first;
  const name = Buffer.from(certId.issuerNameHash.valueBlock.valueHexView);
  const key = Buffer.from(certId.issuerKeyHash.valueBlock.valueHexView);
  return (
    issuers.find((issuer) => {
      let identity = identities.get(issuer);
      if (!identity) identities.set(issuer, (identity = new IssuerIdentity(issuer)));
      const ours = identity.hashes(algorithm);
      return ours.name.equals(name) && ours.key.equals(key);
    }) ?? first
  );
}
