/**
 * Revocation by CRL for relying parties (RFC 5280 §6.3): each issuer's CRL, fetched from the
 * certificate's CRL distribution point, verified against the issuer, and kept until its
 * nextUpdate, and no longer than `maxStalenessMs` (default 5 s) unless a {@link RevocationFeed}
 * vouches for it (revocation-feed.ts). Fail closed: a certificate without a distribution point,
 * a CRL that cannot be fetched or does not verify, or one past its nextUpdate means the
 * certificate is refused.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { DEFAULT_MAX_STALENESS_MS, type FetchedRevocationData, isCurrent, type RevocationNotices, serialKey } from './revocation-feed.js';
import { SvidError } from './svid.js';

/** Fetches a CRL (DER) from its URL. */
export type CrlFetcher = (url: string) => Promise<Uint8Array>;

export interface CrlCacheOptions {
  readonly fetch: CrlFetcher;
  /** The clock; default the system clock. */
  readonly now?: () => Date;
  /** Pushed revocations (a {@link RevocationFeed}): CRLs it vouches for are kept until nextUpdate, and serials it announces are refused at once. */
  readonly feed?: RevocationNotices;
  /** Longest a CRL no feed vouches for is used after it was fetched; default 5,000 ms (`Infinity`: until nextUpdate). */
  readonly maxStalenessMs?: number;
}

interface CachedCrl extends FetchedRevocationData {
  readonly revoked: ReadonlySet<string>;
}

/**
 * A CRL cache shared by the connections of one mTLS server or agent.
 *
 * @example
 * ```ts
 * const crls = new CrlCache({ fetch: (url) => download(url), feed: new RevocationFeed({ source }) });
 * await crls.check(leaf, issuer); // throws SvidError svid.revoked or svid.revocation_unavailable
 * ```
 */
export class CrlCache {
  readonly #fetch: CrlFetcher;
  readonly #now: () => Date;
  readonly #feed: RevocationNotices | undefined;
  readonly #maxStalenessMs: number;
  readonly #cache = new Map<string, CachedCrl>();
  readonly #loading = new Map<string, Promise<CachedCrl>>();

  constructor(options: CrlCacheOptions) {
    this.#fetch = options.fetch;
    this.#now = options.now ?? (() => new Date());
    this.#feed = options.feed;
    this.#maxStalenessMs = options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS;
  }

  /** Drops every cached CRL, so the next check fetches fresh ones (a {@link RevocationFeed} makes this unnecessary). */
  invalidate(): void {
    this.#cache.clear();
  }

  /**
   * @throws SvidError `svid.revoked` when `leaf` is on its issuer's CRL, `svid.revocation_unavailable`
   *   when no valid CRL could be had
   */
  async check(leaf: x509.X509Certificate, issuer: x509.X509Certificate): Promise<void> {
    this.#refuseAnnounced(leaf);
    const url = leaf.getExtension(x509.CRLDistributionPointsExtension)?.distributionPoints.flatMap((dp) => dp.distributionPoint?.fullName?.map((n) => n.uniformResourceIdentifier) ?? []).find((u) => u !== undefined);
    if (url === undefined) throw new SvidError('svid.revocation_unavailable', 'the certificate names no CRL distribution point');
    const key = `${url} ${issuer.subject}`;
    let crl = this.#cache.get(key);
    if (!crl || !isCurrent(crl, this.#now().getTime(), leaf, url, this.#feed, this.#maxStalenessMs)) {
      crl = await this.#download(key, url, issuer);
      // A revocation announced (or a reconnection) while the download was in flight: the CRL may
      // predate it. The announced serials are refused as they stand; for the rest the CRL is
      // fetched once more (once: a burst of revocations must not keep a check waiting forever).
      if (this.#feed && crl.mark !== this.#feed.mark()) {
        this.#refuseAnnounced(leaf);
        crl = await this.#download(key, url, issuer);
      }
      this.#cache.set(key, crl);
      this.#refuseAnnounced(leaf);
    }
    if (crl.revoked.has(serialKey(leaf.serialNumber))) throw new SvidError('svid.revoked', `certificate ${leaf.serialNumber} is revoked`);
  }

  #refuseAnnounced(leaf: x509.X509Certificate): void {
    if (this.#feed?.isRevoked(leaf.serialNumber)) throw new SvidError('svid.revoked', `certificate ${leaf.serialNumber} is revoked (announced by the control plane)`);
  }

  /** Concurrent checks share a download, but not one begun before the feed's last revocation or reconnection. */
  #download(key: string, url: string, issuer: x509.X509Certificate): Promise<CachedCrl> {
    const loadKey = `${key} ${this.#feed?.mark() ?? 0}`;
    let loading = this.#loading.get(loadKey);
    if (!loading) {
      loading = this.#load(url, issuer).finally(() => this.#loading.delete(loadKey));
      this.#loading.set(loadKey, loading);
    }
    return loading;
  }

  async #load(url: string, issuer: x509.X509Certificate): Promise<CachedCrl> {
    const fetchedAt = this.#now().getTime();
    const mark = this.#feed?.mark() ?? 0;
    let crl: x509.X509Crl;
    try {
      const der = await this.#fetch(url);
      // asn1js stops at 10,000 nodes by default, about 2,400 CRL entries: a busy CA's CRL would
      // fail closed for every peer. A node takes at least two bytes, so this bounds nothing the
      // download did not already.
      crl = new x509.X509Crl(der, { berOptions: { maxNodes: der.byteLength } });
    } catch (err) {
      throw new SvidError('svid.revocation_unavailable', `the CRL at ${url} could not be fetched or parsed`, { cause: err });
    }
    const now = this.#now();
    // The CRL comes from the network: it counts only if the certificate's issuer signed it (§6.3.3 (f), (g)).
    if (crl.issuer !== issuer.subject || !(await crl.verify({ publicKey: issuer.publicKey }).catch(() => false))) {
      throw new SvidError('svid.revocation_unavailable', `the CRL at ${url} is not signed by ${issuer.subject}`);
    }
    if (crl.nextUpdate === undefined || crl.nextUpdate <= now || crl.thisUpdate > now) {
      throw new SvidError('svid.revocation_unavailable', `the CRL at ${url} is not current`);
    }
    return { revoked: new Set(crl.entries.map((e) => serialKey(e.serialNumber))), nextUpdate: crl.nextUpdate.getTime(), fetchedAt, mark };
  }
}
