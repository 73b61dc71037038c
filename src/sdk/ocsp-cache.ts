/**
 * Revocation by OCSP for relying parties (RFC 6960): asks the responder named in the
 * certificate's AIA extension, with a fresh nonce (RFC 8954), checks that the answer is signed by
 * the certificate's issuer (§4.2.2.2, the issuer signing directly, as Rampart does), speaks about
 * this serial and echoes the nonce, and keeps a `good` answer until its nextUpdate, and no longer
 * than `maxStalenessMs` (default 5 s) unless a {@link RevocationFeed} vouches for it
 * (revocation-feed.ts), or until {@link OcspCache.invalidate}. Fail closed: no responder URL, no answer, a bad signature, a
 * stale or `unknown` answer all refuse the certificate.
 */
import 'reflect-metadata';
import { randomBytes, verify, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { DEFAULT_MAX_STALENESS_MS, type FetchedRevocationData, isCurrent, type RevocationNotices, serialKey } from './revocation-feed.js';
import { SvidError } from './svid.js';

/** Posts a DER OCSP request to the responder URL and returns the DER response. */
export type OcspFetcher = (url: string, request: Uint8Array) => Promise<Uint8Array>;

export interface OcspCacheOptions {
  readonly fetch: OcspFetcher;
  /** The clock; default the system clock. */
  readonly now?: () => Date;
  /** Pushed revocations (a {@link RevocationFeed}): `good` answers it vouches for are kept until nextUpdate, and serials it announces are refused at once. */
  readonly feed?: RevocationNotices;
  /** Longest a `good` answer no feed vouches for is used after it was asked for; default 5,000 ms (`Infinity`: until nextUpdate). */
  readonly maxStalenessMs?: number;
}

const ID_PKIX_OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';

const unavailable = (message: string, cause?: unknown) => new SvidError('svid.revocation_unavailable', message, cause === undefined ? {} : { cause });

/**
 * An OCSP answer cache shared by the connections of one mTLS server or agent.
 *
 * @example
 * ```ts
 * const ocsp = new OcspCache({ fetch: (url, der) => post(url, der), feed: new RevocationFeed({ source }) });
 * await ocsp.check(leaf, issuer); // throws SvidError svid.revoked or svid.revocation_unavailable
 * ```
 */
export class OcspCache {
  readonly #fetch: OcspFetcher;
  readonly #now: () => Date;
  readonly #feed: RevocationNotices | undefined;
  readonly #maxStalenessMs: number;
  readonly #good = new Map<string, FetchedRevocationData>();
  /** Size at which answers that can no longer decide are swept out (doubling, so sweeps stay amortized O(1)). */
  #sweepAt = 1024;

  constructor(options: OcspCacheOptions) {
    this.#fetch = options.fetch;
    this.#now = options.now ?? (() => new Date());
    this.#feed = options.feed;
    this.#maxStalenessMs = options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS;
  }

  /** Drops every cached answer (a {@link RevocationFeed} makes this unnecessary). */
  invalidate(): void {
    this.#good.clear();
  }

  /**
   * @throws SvidError `svid.revoked`, `svid.revocation_unavailable`
   */
  async check(leaf: x509.X509Certificate, issuer: x509.X509Certificate): Promise<void> {
    this.#refuseAnnounced(leaf);
    const url = leaf.getExtension(x509.AuthorityInfoAccessExtension)?.ocsp.find((n) => n.type === 'url')?.value;
    if (url === undefined) throw unavailable('the certificate names no OCSP responder');
    const key = `${issuer.subject} ${leaf.serialNumber}`;
    const cached = this.#good.get(key);
    if (cached !== undefined && isCurrent(cached, this.#now().getTime(), leaf, url, this.#feed, this.#maxStalenessMs)) return;
    this.#good.delete(key);
    let answer = await this.#ask(url, leaf, issuer);
    // A revocation announced (or a reconnection) while the question was in flight: the `good`
    // answer may predate it. Announced serials are refused; for the rest the responder is asked
    // once more (once: a burst of revocations must not keep a check waiting forever).
    if (this.#feed && answer.mark !== this.#feed.mark()) {
      this.#refuseAnnounced(leaf);
      answer = await this.#ask(url, leaf, issuer);
    }
    this.#refuseAnnounced(leaf);
    this.#good.set(key, answer);
    if (this.#good.size >= this.#sweepAt) this.#sweep();
  }

  #refuseAnnounced(leaf: x509.X509Certificate): void {
    if (this.#feed?.isRevoked(leaf.serialNumber)) throw new SvidError('svid.revoked', `certificate ${leaf.serialNumber} is revoked (announced by the control plane)`);
  }

  /** One question to the responder, with a fresh nonce; the `good` answer with when it was asked and the feed's mark then. */
  async #ask(url: string, leaf: x509.X509Certificate, issuer: x509.X509Certificate): Promise<FetchedRevocationData> {
    const fetchedAt = this.#now().getTime();
    const mark = this.#feed?.mark() ?? 0;
    const nonce = randomBytes(16);
    const request = new pkijs.OCSPRequest();
    await request.createForCertificate(pkijs.Certificate.fromBER(leaf.rawData), { hashAlgorithm: 'SHA-256', issuerCertificate: pkijs.Certificate.fromBER(issuer.rawData) });
    request.tbsRequest.requestExtensions = [new pkijs.Extension({ extnID: ID_PKIX_OCSP_NONCE, extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER() })];
    let der: Uint8Array;
    try {
      der = await this.#fetch(url, new Uint8Array(request.toSchema(true).toBER()));
    } catch (err) {
      throw unavailable(`the OCSP responder at ${url} did not answer`, err);
    }
    return { nextUpdate: this.#evaluate(der, leaf, issuer, nonce), fetchedAt, mark };
  }

  /** Drops answers past their nextUpdate or from before the feed's last revocation or reconnection: one per peer certificate ever seen would pile up. */
  #sweep(): void {
    const now = this.#now().getTime();
    const mark = this.#feed?.mark();
    for (const [key, answer] of this.#good) if (now >= answer.nextUpdate || (mark !== undefined && answer.mark !== mark)) this.#good.delete(key);
    this.#sweepAt = Math.max(1024, this.#good.size * 2);
  }

  /** Returns the answer's nextUpdate when it says `good`; throws otherwise. The bytes come from the network. */
  #evaluate(der: Uint8Array, leaf: x509.X509Certificate, issuer: x509.X509Certificate, nonce: Buffer): number {
    let basic: pkijs.BasicOCSPResponse;
    try {
      const response = pkijs.OCSPResponse.fromBER(der);
      if (response.responseStatus.valueBlock.valueDec !== 0 || !response.responseBytes) throw new Error(`responseStatus ${response.responseStatus.valueBlock.valueDec}`);
      basic = pkijs.BasicOCSPResponse.fromBER(response.responseBytes.response.valueBlock.valueHexView);
    } catch (err) {
      throw unavailable('the OCSP answer is malformed or not successful', err);
    }
    // Signed by the issuer itself (§4.2.2.2): verify over the DER of tbsResponseData as received.
    const issuerKey = new X509Certificate(Buffer.from(issuer.rawData)).publicKey;
    const hash = issuerKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
    const signed = (() => {
      try {
        return verify(hash, basic.tbsResponseData.tbsView, issuerKey, basic.signature.valueBlock.valueHexView);
      } catch {
        return false;
      }
    })();
    if (!signed) throw unavailable(`the OCSP answer is not signed by ${issuer.subject}`);
    const echoed = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === ID_PKIX_OCSP_NONCE);
    if (!echoed || !Buffer.from(echoed.extnValue.valueBlock.valueHexView).equals(Buffer.from(new asn1js.OctetString({ valueHex: nonce }).toBER()))) {
      throw unavailable('the OCSP answer does not echo our nonce (a replay?)');
    }
    const serial = serialKey(leaf.serialNumber);
    const single = basic.tbsResponseData.responses.find((r) => serialKey(Buffer.from(r.certID.serialNumber.valueBlock.valueHexView).toString('hex')) === serial);
    if (!single) throw unavailable('the OCSP answer does not speak about this certificate');
    const now = this.#now();
    if (single.thisUpdate > new Date(now.getTime() + 300_000) || (single.nextUpdate !== undefined && single.nextUpdate <= now)) throw unavailable('the OCSP answer is not current');
    switch (single.certStatus.idBlock.tagNumber) {
      case 0:
        return (single.nextUpdate ?? now).getTime();
      case 1:
        throw new SvidError('svid.revoked', `certificate ${leaf.serialNumber} is revoked (OCSP)`);
      default:
        throw unavailable(`the OCSP responder does not know certificate ${leaf.serialNumber}`);
    }
  }
}
