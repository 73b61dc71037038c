/**
 * Revocation by CRL for relying parties (RFC 5280 §6.3): each issuer's CRL, fetched from the
 * certificate's CRL distribution point, verified against the issuer, and kept until its
 * nextUpdate or until {@link CrlCache.invalidate} (call it on a revocation event). Fail closed:
 * a certificate without a distribution point, a CRL that cannot be fetched or does not verify,
 * or one past its nextUpdate means the certificate is refused.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SvidError } from './svid.js';

/** Fetches a CRL (DER) from its URL. */
export type CrlFetcher = (url: string) => Promise<Uint8Array>;

export interface CrlCacheOptions {
  readonly fetch: CrlFetcher;
  /** The clock; default the system clock. */
  readonly now?: () => Date;
}

interface CachedCrl {
  readonly revoked: ReadonlySet<string>;
  readonly nextUpdate: number;
}

/** Serial hex as @peculiar/x509 prints it, without leading zero octets, lowercase. */
const serialKey = (hex: string): string => hex.toLowerCase().replace(/^(00)+/, '');

/**
 * A CRL cache shared by the connections of one mTLS server or agent.
 *
 * @example
 * ```ts
 * const crls = new CrlCache({ fetch: (url) => download(url) });
 * await crls.check(leaf, issuer); // throws SvidError svid.revoked or svid.revocation_unavailable
 * ```
 */
export class CrlCache {
  readonly #fetch: CrlFetcher;
  readonly #now: () => Date;
  readonly #cache = new Map<string, CachedCrl>();
  readonly #loading = new Map<string, Promise<CachedCrl>>();

  constructor(options: CrlCacheOptions) {
    this.#fetch = options.fetch;
    this.#now = options.now ?? (() => new Date());
  }

  /** Drops every cached CRL, so the next check fetches fresh ones (after a revocation event). */
  invalidate(): void {
    this.#cache.clear();
  }

  /**
   * @throws SvidError `svid.revoked` when `leaf` is on its issuer's CRL, `svid.revocation_unavailable`
   *   when no valid CRL could be had
   */
  async check(leaf: x509.X509Certificate, issuer: x509.X509Certificate): Promise<void> {
    const url = leaf.getExtension(x509.CRLDistributionPointsExtension)?.distributionPoints.flatMap((dp) => dp.distributionPoint?.fullName?.map((n) => n.uniformResourceIdentifier) ?? []).find((u) => u !== undefined);
    if (url === undefined) throw new SvidError('svid.revocation_unavailable', 'the certificate names no CRL distribution point');
    const key = `${url} ${issuer.subject}`;
    let crl = this.#cache.get(key);
    if (!crl || this.#now().getTime() >= crl.nextUpdate) {
      let loading = this.#loading.get(key);
      if (!loading) {
        loading = this.#load(url, issuer).finally(() => this.#loading.delete(key));
        this.#loading.set(key, loading);
      }
      crl = await loading;
      this.#cache.set(key, crl);
    }
    if (crl.revoked.has(serialKey(leaf.serialNumber))) throw new SvidError('svid.revoked', `certificate ${leaf.serialNumber} is revoked`);
  }

  async #load(url: string, issuer: x509.X509Certificate): Promise<CachedCrl> {
    let crl: x509.X509Crl;
    try {
      crl = new x509.X509Crl(await this.#fetch(url));
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
    return { revoked: new Set(crl.entries.map((e) => serialKey(e.serialNumber))), nextUpdate: crl.nextUpdate.getTime() };
  }
}
