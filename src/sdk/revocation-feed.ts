/**
 * Revocations pushed by the control plane to relying parties: a follower of
 * `GET /v1/pki/events` (server-sent events, WHATWG HTML §9.2) that lets {@link CrlCache} and
 * {@link OcspCache} keep revocation data for as long as it is current, and no longer.
 *
 * A CRL is valid for an hour and a `good` OCSP answer for minutes (RFC 5280 §5.1.2.5, RFC 6960
 * §4.2.2.1): a cache that waits for nextUpdate learns of a revocation up to that late. With the
 * feed connected, a cached verdict stands until a `revoked` event arrives, which drops every
 * cached verdict and refuses the revoked serials at once, before anything is refetched. A verdict
 * is vouched for only while the stream that was open when it was fetched is still open: on every
 * (re)connection the caches start over, since events sent while the stream was down may be
 * lost. The feed resumes with `Last-Event-ID`: the server replays the revocations logged since,
 * so their serials are refused at once, or sends `resync` when its log no longer reaches back
 * that far (nothing cached is vouched for then either); a replay does not tell which cached
 * verdicts went stale, so they start over all the same. While the feed is down, for a trust domain
 * it does not cover, or for data not fetched from the control plane, the caches fall back to revocation data at most `maxStalenessMs` old
 * (default 5 s), refetched as needed, failing closed when it cannot be had.
 */
import type { IncomingMessage } from 'node:http';
import * as x509 from '@peculiar/x509';
import { parseSpiffeId } from '../pki/spiffe.js';
import { RampartClient } from './client.js';
import { EventStreamParser, type StreamEvent } from './event-stream.js';
import type { SvidMaterial, SvidSource } from './svid-source.js';
import { certificatesOf, spiffeIdOf } from './svid.js';

/** Serial hex as @peculiar/x509 prints it, without leading zero octets, lowercase: one key for CRL entries, OCSP and events. */
export const serialKey = (hex: string): string => hex.toLowerCase().replace(/^(00)+/, '');

/** How old revocation data no feed vouches for may be: the "revocable within seconds" bound. */
export const DEFAULT_MAX_STALENESS_MS = 5_000;

/** Revocation data as a cache holds it: its nextUpdate, when its fetch started, and the feed's mark then. */
export interface FetchedRevocationData {
  readonly nextUpdate: number;
  readonly fetchedAt: number;
  readonly mark: number;
}

/**
 * Whether cached revocation data fetched from `url` may still decide about `leaf` at `now` (ms):
 * before its nextUpdate, and vouched for by `feed`, or else fetched at most `maxStalenessMs` ago
 * with no revocation announced and no reconnection since (either drops everything fetched before
 * it). Internal to the SDK's caches.
 */
export function isCurrent(entry: FetchedRevocationData, now: number, leaf: x509.X509Certificate, url: string, feed: RevocationNotices | undefined, maxStalenessMs: number): boolean {
  if (now >= entry.nextUpdate) return false;
  if (feed && entry.mark !== feed.mark()) return false;
  if (now - entry.fetchedAt <= maxStalenessMs) return true;
  return feed !== undefined && feed.vouchesFor(entry.mark, trustDomainOf(leaf), url);
}

/**
 * Whether `url` is one of the control plane's own endpoints: under `addr` (same origin, below its
 * path). A trust-domain name proves nothing (any CA can put `spiffe://acme.rampart.local/…` in a
 * certificate), but a CRL or OCSP answer that came from the control plane and verified against
 * the peer's issuer is the control plane's, so its events cover it.
 */
export function isUnder(url: string, addr: string): boolean {
  try {
    const target = new URL(url);
    const base = new URL(addr);
    const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
    return target.origin === base.origin && target.username === '' && target.password === '' && target.pathname.startsWith(prefix);
  } catch {
    return false;
  }
}

/** The trust domain of `leaf`'s SPIFFE ID, or '' when it has none (then no feed vouches for it). */
function trustDomainOf(leaf: x509.X509Certificate): string {
  try {
    return parseSpiffeId(spiffeIdOf(leaf)).trustDomain;
  } catch {
    return '';
  }
}

/**
 * What a revocation cache asks of a feed (a {@link RevocationFeed}, or a test double).
 *
 * @example
 * ```ts
 * const mark = feed.mark(); // before fetching
 * const usable = feed.vouchesFor(mark, 'acme.rampart.local', 'https://rampart.internal:8443/v1/pki/ocsp');
 * ```
 */
export interface RevocationNotices {
  /** An opaque mark to take before fetching revocation data. */
  mark(): number;
  /**
   * Whether data fetched from `url` after taking `mark` is still current for peers of
   * `trustDomain`: the stream is open, has been open since `mark` was taken, no revocation
   * arrived since, it carries that trust domain's revocations, and `url` is the control plane's.
   */
  vouchesFor(mark: number, trustDomain: string, url: string): boolean;
  /** Whether the feed announced `serialNumber` (hex) as revoked. */
  isRevoked(serialNumber: string): boolean;
}

/**
 * Where a feed connects and how it authenticates, beyond the SVID it always presents: a token
 * (sent as a bearer token, and then the principal), the tenant, and the CAs to trust for the
 * control plane's TLS certificate (default the SVID's bundle, which issued it).
 *
 * @example
 * ```ts
 * const controlPlane: ControlPlane = { addr: 'https://rampart.internal:8443' };
 * ```
 */
export interface ControlPlane {
  readonly addr: string;
  readonly token?: string;
  readonly tenant?: string;
  readonly caPem?: string;
}

/**
 * A change of the feed's state, for logs and tests: `connected` (the subscription is live, the
 * caches start over), `disconnected` (with why; it reconnects), `revoked` (with the serials).
 *
 * @example
 * ```ts
 * feed.watch((change) => change.type === 'disconnected' && log.warn({ err: change.error }, 'revocation feed down'));
 * ```
 */
export type FeedChange = { readonly type: 'connected' } | { readonly type: 'disconnected'; readonly error: Error } | { readonly type: 'revoked'; readonly serialNumbers: readonly string[] };

/**
 * Options of {@link RevocationFeed}.
 *
 * @example
 * ```ts
 * const options: RevocationFeedOptions = { source, controlPlane: { addr: 'https://rampart.internal:8443' } };
 * ```
 */
export interface RevocationFeedOptions {
  /** This side's SVID: presented to the control plane (mTLS), and the default trust domain and control plane. */
  readonly source: SvidSource;
  /** Default: the control plane that issued the source's SVID (see {@link controlPlaneOf}). */
  readonly controlPlane?: ControlPlane;
  /** The trust domain whose revocations the stream carries; default the source SVID's. */
  readonly trustDomain?: string;
  /** Reconnection backoff: the first delay, doubled per failed attempt up to `maxBackoffMs`, with full jitter. Defaults 250 ms and 15 s. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * A stream silent this long is taken for dead and reopened (the server sends a comment every
   * 15 s; a half-open TCP connection otherwise looks open forever). Default 40 s.
   */
  readonly idleTimeoutMs?: number;
  /** The clock for revoked serials' retention; default the system clock. */
  readonly now?: () => Date;
}

/** How long an announced serial is refused by the feed itself: past the longest SVID lifetime the server grants by default (24 h). */
const REVOKED_RETENTION_MS = 86_400_000;
/** At most this many announced serials are kept (oldest dropped first); the CRL or OCSP, refetched after the event, still lists them. */
const REVOKED_MAX = 100_000;

/**
 * The control plane that issued `svid`, when it is a Rampart SVID: the base address in front of
 * the `/v1/pki/ocsp` responder or `/v1/pki/issuers/<id>/crl` distribution point it names
 * (svid-signing.ts puts both there from the server's advertised address). Undefined otherwise.
 *
 * @example
 * ```ts
 * controlPlaneOf(source.current()!); // { addr: 'https://rampart.internal:8443' }
 * ```
 */
export function controlPlaneOf(svid: SvidMaterial): ControlPlane | undefined {
  let leaf: x509.X509Certificate | undefined;
  try {
    leaf = certificatesOf(svid.svidPem)[0];
  } catch {
    return undefined;
  }
  if (!leaf) return undefined;
  const ocsp = leaf.getExtension(x509.AuthorityInfoAccessExtension)?.ocsp.find((n) => n.type === 'url')?.value;
  const crl = leaf.getExtension(x509.CRLDistributionPointsExtension)?.distributionPoints.flatMap((dp) => dp.distributionPoint?.fullName?.map((n) => n.uniformResourceIdentifier) ?? []);
  for (const url of [ocsp, ...(crl ?? [])]) {
    const addr = url === undefined ? undefined : /^(https:\/\/.+?)\/v1\/pki\/(?:ocsp|issuers\/[^/]+\/crl)$/.exec(url)?.[1];
    if (addr !== undefined) return { addr };
  }
  return undefined;
}

/**
 * Follows the control plane's revocation events for the caches of one or more mTLS servers,
 * agents and dispatchers (pass it as their `revocationFeed` to share one stream). It connects at
 * once, reconnects with backoff and jitter until {@link RevocationFeed.close}, presents the
 * source's current SVID on every connection (rotations included), and never keeps the process
 * alive (its sockets and retry timer are unref'd). An attempt that stays silent for
 * `idleTimeoutMs` (connect, TLS, response headers, the `connected` comment) counts as failed and
 * is retried with backoff, as is an open stream that goes silent that long. The
 * workload's principal needs `pki:events` on `<tenant>/pki` (the seed policy grants it to every
 * workload).
 *
 * @example
 * ```ts
 * const feed = new RevocationFeed({ source });
 * const server = createMtlsServer({ source, authorize, handler, revocationFeed: feed });
 * const agent = createMtlsAgent({ source, authorize: [apiId], revocationFeed: feed });
 * // …
 * feed.close();
 * ```
 */
export class RevocationFeed implements RevocationNotices {
  readonly #o: RevocationFeedOptions;
  readonly #controlPlane: ControlPlane;
  readonly #trustDomain: string;
  readonly #now: () => Date;
  readonly #revoked = new Map<string, number>();
  readonly #watchers = new Set<(change: FeedChange) => void>();
  #epoch = 0;
  #live = false;
  #closed = false;
  #failures = 0;
  #client: RampartClient | undefined;
  #response: IncomingMessage | undefined;
  #retry: NodeJS.Timeout | undefined;
  #lastEventId: string | undefined;
  /** Where the control plane's CRLs and OCSP answers come from: its address, and the one its SVIDs name (it may sit behind a different name). */
  #origins: readonly string[];

  /** @throws TypeError when no control plane is given and the SVID names none, or no trust domain can be had */
  constructor(options: RevocationFeedOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    const svid = options.source.current();
    const controlPlane = options.controlPlane ?? (svid && controlPlaneOf(svid));
    if (!controlPlane) throw new TypeError('the SVID names no Rampart control plane: pass controlPlane');
    this.#controlPlane = controlPlane;
    const trustDomain = options.trustDomain ?? (svid && parseSpiffeId(spiffeIdOf(svid.svidPem)).trustDomain);
    if (!trustDomain) throw new TypeError('no SVID yet to take the trust domain from: pass trustDomain');
    this.#trustDomain = trustDomain;
    this.#origins = [controlPlane.addr];
    this.#connect();
  }

  /** Whether the stream is open and subscribed now. */
  get live(): boolean {
    return this.#live;
  }

  mark(): number {
    return this.#epoch;
  }

  vouchesFor(mark: number, trustDomain: string, url: string): boolean {
    return this.#live && mark === this.#epoch && trustDomain === this.#trustDomain && this.#origins.some((addr) => isUnder(url, addr));
  }

  isRevoked(serialNumber: string): boolean {
    const at = this.#revoked.get(serialKey(serialNumber));
    return at !== undefined && this.#now().getTime() - at < REVOKED_RETENTION_MS;
  }

  /** Calls `watcher` on every later {@link FeedChange}; returns the unsubscribe. */
  watch(watcher: (change: FeedChange) => void): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /** Closes the stream and stops reconnecting; the caches then rely on `maxStalenessMs` alone. */
  close(): void {
    this.#closed = true;
    this.#live = false;
    clearTimeout(this.#retry);
    this.#response?.destroy();
    this.#client?.close();
  }

  #emit(change: FeedChange): void {
    for (const watcher of this.#watchers) {
      try {
        watcher(change);
      } catch {
        continue;
      }
    }
  }

  #connect(): void {
    if (this.#closed) return;
    const svid = this.#o.source.current();
    const cp = this.#controlPlane;
    // The SVID presented is this control plane's (it authenticates the stream), so the address it names is too.
    const named = svid && controlPlaneOf(svid)?.addr;
    this.#origins = named === undefined || named === cp.addr ? [cp.addr] : [cp.addr, named];
    this.#client?.close();
    // A client per connection: the SVID it presents is the one current now, after any rotation.
    const client = new RampartClient({
      addr: cp.addr,
      ...(cp.token === undefined ? {} : { token: cp.token }),
      ...(cp.tenant === undefined ? {} : { tenant: cp.tenant }),
      ...(cp.caPem ?? svid?.bundlePem ? { caPem: cp.caPem ?? svid?.bundlePem } : {}),
      ...(svid ? { clientCert: { certPem: svid.svidPem, keyPem: svid.keyPem } } : {}),
    });
    this.#client = client;
    let failed = false;
    const fail = (error: Error) => {
      if (failed || this.#closed) return;
      failed = true;
      const wasLive = this.#live;
      this.#live = false;
      this.#response = undefined;
      this.#emit({ type: 'disconnected', error });
      if (!wasLive) this.#failures++;
      const min = this.#o.minBackoffMs ?? 250;
      const max = this.#o.maxBackoffMs ?? 15_000;
      const delay = Math.random() * Math.min(max, min * 2 ** Math.min(this.#failures, 20));
      this.#retry = setTimeout(() => this.#connect(), delay);
      this.#retry.unref();
    };
    const idleTimeoutMs = this.#o.idleTimeoutMs ?? 40_000;
    // The feed must not hold the process open (the server or agent it serves does), not even while connecting.
    const options = { timeoutMs: idleTimeoutMs, unref: true, ...(this.#lastEventId === undefined ? {} : { headers: { 'last-event-id': this.#lastEventId } }) };
    client.stream('/v1/pki/events', options).then((res) => {
      if (this.#closed) {
        res.destroy();
        return;
      }
      this.#response = res;
      // From the headers on, including the wait for `connected`: silence this long means a dead stream.
      res.socket.setTimeout(idleTimeoutMs, () => res.destroy(new Error('the revocation event stream went silent')));
      const parser = new EventStreamParser(
        (e) => this.#onEvent(e),
        (comment) => {
          // The server subscribes before it writes `connected`: from here on no revocation is missed.
          if (comment !== 'connected' || this.#live) return;
          this.#epoch++;
          this.#live = true;
          this.#failures = 0;
          this.#emit({ type: 'connected' });
        },
      );
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => parser.push(chunk));
      res.on('end', () => fail(new Error('the revocation event stream ended')));
      res.on('error', fail);
      res.on('close', () => fail(new Error('the revocation event stream closed')));
    }, fail);
  }

  #onEvent(e: StreamEvent): void {
    if (e.id !== undefined) this.#lastEventId = e.id;
    // Revocations were missed for good: whatever was cached before is not vouched for.
    if (e.event === 'resync') this.#epoch++;
    // Replayed revocations (after Last-Event-ID) arrive before `connected`: they count as well.
    if (e.event !== 'revoked') return;
    let serials: string[];
    try {
      const data = JSON.parse(e.data) as { serial_numbers?: unknown };
      serials = Array.isArray(data.serial_numbers) ? data.serial_numbers.filter((s): s is string => typeof s === 'string') : [];
    } catch {
      serials = [];
    }
    // Whatever it says, a revocation happened: nothing cached before it is vouched for any more.
    this.#epoch++;
    const now = this.#now().getTime();
    for (const serial of serials) {
      const key = serialKey(serial);
      this.#revoked.delete(key);
      this.#revoked.set(key, now);
    }
    for (const [key, at] of this.#revoked) {
      if (this.#revoked.size <= REVOKED_MAX && now - at < REVOKED_RETENTION_MS) break;
      this.#revoked.delete(key);
    }
    this.#emit({ type: 'revoked', serialNumbers: serials });
  }
}

/** One holder's claim on a shared {@link RevocationFeed}: {@link FeedLease.release} once; the last release closes the feed. */
export interface FeedLease {
  readonly feed: RevocationFeed;
  release(): void;
}

/** Default feeds by SVID source, then by control plane and credentials. */
const sharedFeeds = new WeakMap<SvidSource, Map<string, { readonly feed: RevocationFeed; users: number }>>();

/**
 * The default feed of the mTLS servers, agents and dispatchers built on `source`: one stream per
 * source and control plane (address, token, tenant, trusted CAs), however many of them there are,
 * closed when the last one releases it. `now` is taken from the first holder (it only ages
 * announced serials). Internal to the SDK (mtls.ts).
 */
export function leaseSharedFeed(source: SvidSource, controlPlane: ControlPlane, now?: () => Date): FeedLease {
  let feeds = sharedFeeds.get(source);
  if (!feeds) sharedFeeds.set(source, (feeds = new Map()));
  const byCredentials = feeds;
  const key = JSON.stringify([controlPlane.addr, controlPlane.token ?? null, controlPlane.tenant ?? null, controlPlane.caPem ?? null]);
  let entry = byCredentials.get(key);
  if (!entry) {
    entry = { feed: new RevocationFeed({ source, controlPlane, ...(now ? { now } : {}) }), users: 0 };
    byCredentials.set(key, entry);
  }
  const held = entry;
  held.users++;
  let released = false;
  return {
    feed: held.feed,
    release: () => {
      if (released) return;
      released = true;
      if (--held.users > 0) return;
      byCredentials.delete(key);
      held.feed.close();
    },
  };
}
