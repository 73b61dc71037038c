/**
 * mTLS between services with X.509-SVIDs: a server and an `https` agent that present the current
 * SVID of a {@link SvidSource}, swap it on rotation without dropping open connections, and accept
 * a peer only after its chain validates as an SVID against the current bundle, its SPIFFE ID is
 * authorized and, by default, its certificate is not on its issuer's CRL. Everything fails closed.
 * By default a {@link RevocationFeed} follows the issuing control plane's revocation events, so a
 * revoked peer is refused at its next handshake, and revocation data is otherwise at most 5 s old.
 * That default feed is shared by every server, agent and dispatcher built on the same
 * {@link SvidSource} and control plane (one stream), and closed when the last of them is closed:
 * `server.close()`, `agent.destroy()`, `dispatcher.close()`/`destroy()` are required, since one
 * dropped without them keeps its share of the stream open for the life of the process.
 *
 * OpenSSL validates the chain during the handshake; the SPIFFE checks, which need the whole chain
 * and may need a CRL download, run right after it and before a single byte of HTTP is read from
 * or written to the connection.
 *
 * The undici dispatcher (`createMtlsDispatcher`, src/sdk/mtls-undici.ts) runs the same checks
 * through {@link PeerVerifier}.
 */
import 'reflect-metadata';
import http, { type IncomingMessage, type RequestListener } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { CrlCache, type CrlFetcher } from './crl-cache.js';
import { OcspCache, type OcspFetcher } from './ocsp-cache.js';
import { type ControlPlane, controlPlaneOf, type FeedLease, leaseSharedFeed, type RevocationFeed } from './revocation-feed.js';
import type { SvidMaterial, SvidSource } from './svid-source.js';
import { SvidError, type VerifiedSvid, verifySvid } from './svid.js';

/**
 * How peers' certificates are checked for revocation: `crl` (the default) fetches and caches the
 * issuer's CRL; `ocsp` asks the issuer's responder (with a nonce) and caches `good` answers; a
 * {@link CrlCache} or {@link OcspCache} shares one cache (give it its own `feed`: the options
 * `controlPlane`, `revocationFeed` and `maxStalenessMs` apply only to caches made here); `none`
 * skips the check.
 */
export type RevocationPolicy = 'crl' | 'ocsp' | 'none' | CrlCache | OcspCache;

export interface MtlsOptions {
  /** This side's SVID, key and bundle, and their replacements. */
  readonly source: SvidSource;
  /** The peers' SPIFFE IDs to accept, or a callback deciding. */
  readonly authorize: readonly string[] | ((spiffeId: string) => boolean);
  readonly revocation?: RevocationPolicy;
  /** The validation clock; default the system clock. */
  readonly now?: () => Date;
  /** Fetches CRLs; default an HTTPS GET that trusts the current bundle. */
  readonly fetchCrl?: CrlFetcher;
  /** Posts OCSP requests; default an HTTPS POST that trusts the current bundle. */
  readonly fetchOcsp?: OcspFetcher;
  /**
   * Where revocation events are followed from (`GET /v1/pki/events`, with this side's SVID).
   * Default: the control plane that issued the source's SVID, named in its OCSP and CRL URLs;
   * none for an SVID from elsewhere. `false` turns the feed off. The feed is shared by everything
   * built on the same source and control plane, and closed when the last of them is closed.
   */
  readonly controlPlane?: ControlPlane | false;
  /** A {@link RevocationFeed} shared with other servers, agents or dispatchers (its creator closes it); replaces `controlPlane`. */
  readonly revocationFeed?: RevocationFeed;
  /** Longest revocation data that no connected feed vouches for is used; default 5,000 ms. */
  readonly maxStalenessMs?: number;
}

export function currentSvid(source: SvidSource): SvidMaterial {
  const svid = source.current();
  if (!svid) throw new SvidError('svid.malformed', 'the SVID source has no SVID yet');
  return svid;
}

/**
 * Largest CRL and OCSP answer the default fetcher reads. The bytes come from wherever the peer's
 * certificate points, before anything verifies them: unbounded, one response could exhaust
 * memory. 16 MiB holds a CRL of some 400,000 entries; an OCSP answer about one certificate is
 * a few hundred bytes (RFC 6960 §4.2.1), plus the responder's chain.
 */
export const MAX_CRL_BYTES = 16 * 1024 * 1024;
export const MAX_OCSP_RESPONSE_BYTES = 64 * 1024;

/**
 * HTTPS GET of a CRL, or POST of an OCSP request, trusting only the bundle the caller currently
 * holds, and refusing answers beyond {@link MAX_CRL_BYTES} or {@link MAX_OCSP_RESPONSE_BYTES}.
 * Internal to the SDK.
 */
export function httpsFetcher(source: SvidSource): (url: string, body?: Uint8Array) => Promise<Uint8Array> {
  return (url, body) =>
    new Promise((resolve, reject) => {
      const options = { ca: currentSvid(source).bundlePem, timeout: 10_000, method: body ? 'POST' : 'GET', headers: body ? { 'content-type': 'application/ocsp-request' } : {} };
      const limit = body ? MAX_OCSP_RESPONSE_BYTES : MAX_CRL_BYTES;
      const tooLarge = () => new Error(`${options.method} ${url}: the ${body ? 'OCSP answer' : 'CRL'} exceeds ${limit} bytes`);
      const req = https.request(url, options, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${options.method} ${url}: HTTP ${res.statusCode}`));
          return;
        }
        res.on('error', reject);
        if (Number(res.headers['content-length'] ?? 0) > limit) {
          res.destroy(tooLarge());
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > limit) res.destroy(tooLarge());
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('timeout', () => req.destroy(new Error(`${options.method} ${url}: timed out`)));
      req.on('error', reject);
      req.end(body);
    });
}

/** The peer's chain as the handshake delivered it, leaf first, as DER. */
function peerChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert = socket.getPeerCertificate(true);
  while (cert && cert.raw && !chain.some((c) => c.equals(cert.raw))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * Checks a peer once its handshake finished: SVID rules and authorization, then revocation. One
 * per server, agent or dispatcher, so that its revocation cache is shared by their connections.
 * Internal to the SDK (not exported from its index).
 */
export class PeerVerifier {
  readonly #source: SvidSource;
  readonly #authorize: MtlsOptions['authorize'];
  readonly #now: () => Date;
  readonly #revocation: CrlCache | OcspCache | undefined;
  /** This verifier's claim on the default feed of its source (none when given one or none applies), released with it. */
  readonly #lease: FeedLease | undefined;

  constructor(options: MtlsOptions) {
    this.#source = options.source;
    this.#authorize = options.authorize;
    this.#now = options.now ?? (() => new Date());
    const revocation = options.revocation ?? 'crl';
    const fetcher = httpsFetcher(options.source);
    if (revocation === 'crl' || revocation === 'ocsp') {
      this.#lease = options.revocationFeed ? undefined : leaseDefaultFeed(options);
      const feed = options.revocationFeed ?? this.#lease?.feed;
      const common = { now: this.#now, ...(feed ? { feed } : {}), ...(options.maxStalenessMs === undefined ? {} : { maxStalenessMs: options.maxStalenessMs }) };
      this.#revocation = revocation === 'crl' ? new CrlCache({ fetch: options.fetchCrl ?? ((url) => fetcher(url)), ...common }) : new OcspCache({ fetch: options.fetchOcsp ?? fetcher, ...common });
    } else this.#revocation = revocation === 'none' ? undefined : revocation;
  }

  /** Releases the default feed, closing it if this was its last user; idempotent. */
  close(): void {
    this.#lease?.release();
  }

  async verify(socket: TLSSocket): Promise<VerifiedSvid> {
    const chain = peerChain(socket);
    if (chain.length === 0) throw new SvidError('svid.untrusted', 'the peer sent no certificate');
    const verified = await verifySvid(chain, currentSvid(this.#source).bundlePem, { at: this.#now(), authorize: this.#authorize });
    const [leaf, issuer] = verified.path;
    if (this.#revocation && leaf && issuer) await this.#revocation.check(leaf, issuer);
    return verified;
  }
}

/** The default feed, shared by everything built on the same source: to the control plane given, or else to the one that issued the source's SVID, if any. */
function leaseDefaultFeed(options: MtlsOptions): FeedLease | undefined {
  if (options.controlPlane === false) return undefined;
  const controlPlane = options.controlPlane ?? controlPlaneOf(currentSvid(options.source));
  return controlPlane ? leaseSharedFeed(options.source, controlPlane, options.now) : undefined;
}

/** The client-side TLS context for `svid`: its chain and key, trusting its bundle, TLS 1.3 only. */
export const secureContextOf = (svid: SvidMaterial): SecureContext => tls.createSecureContext({ cert: svid.svidPem, key: svid.keyPem, ca: svid.bundlePem, minVersion: 'TLSv1.3' });

const peers = new WeakMap<Duplex, VerifiedSvid>();

/**
 * The verified SVID of the client that sent `req` to a {@link createMtlsServer} server.
 *
 * @example
 * ```ts
 * const server = createMtlsServer({ source, authorize: (id) => id.startsWith('spiffe://acme.rampart.local/'), handler: (req, res) => res.end(mtlsPeer(req)?.spiffeId) });
 * ```
 */
export function mtlsPeer(req: IncomingMessage): VerifiedSvid | undefined {
  return peers.get(req.socket);
}

export interface MtlsServerOptions extends MtlsOptions {
  readonly handler: RequestListener;
  /** Called with each refused connection's reason (the connection is already closed). */
  readonly onRefused?: (err: Error) => void;
}

/**
 * An HTTPS server that requires client SVIDs. Listen on it as on any `tls.Server`; every
 * `source` update replaces the server's certificate, key and bundle for new handshakes
 * (`setSecureContext`), while established connections carry on undisturbed.
 *
 * @example
 * ```ts
 * const server = createMtlsServer({ source, authorize: ['spiffe://acme.rampart.local/ns/web/sa/frontend'], handler: app });
 * server.listen(8443);
 * ```
 */
export function createMtlsServer(options: MtlsServerOptions): tls.Server {
  const svid = currentSvid(options.source);
  const verifier = new PeerVerifier(options);
  const httpServer = http.createServer(options.handler);
  const server = tls.createServer({ cert: svid.svidPem, key: svid.keyPem, ca: svid.bundlePem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
  const unsubscribe = options.source.onUpdate((next) => server.setSecureContext({ cert: next.svidPem, key: next.keyPem, ca: next.bundlePem, minVersion: 'TLSv1.3' }));
  server.on('secureConnection', (socket: TLSSocket) => {
    // Until the peer is verified no listener reads the socket, so no request is parsed; a peer
    // that resets meanwhile must not become an unhandled 'error'.
    const onEarlyError = () => socket.destroy();
    socket.on('error', onEarlyError);
    verifier.verify(socket).then(
      (peer) => {
        socket.removeListener('error', onEarlyError);
        if (socket.destroyed) return;
        peers.set(socket, peer);
        httpServer.emit('connection', socket);
      },
      (err: Error) => {
        socket.destroy();
        options.onRefused?.(err);
      },
    );
  });
  server.on('close', () => {
    unsubscribe();
    verifier.close();
    httpServer.close();
  });
  return server;
}

export interface MtlsAgentOptions extends MtlsOptions {
  /** Passed to `https.Agent` (keepAlive, maxSockets, …). */
  readonly agent?: https.AgentOptions;
}

/**
 * An `https.Agent` that presents the current SVID and accepts a server only if its SVID is
 * authorized (host names are not checked: the SPIFFE ID is the identity). On rotation the new
 * SVID is used for new connections; pooled keep-alive connections stay in the pool.
 *
 * @example
 * ```ts
 * const agent = createMtlsAgent({ source, authorize: ['spiffe://acme.rampart.local/ns/pay/sa/api'], agent: { keepAlive: true } });
 * https.get('https://pay.internal:8443/balance', { agent }, onResponse);
 * ```
 */
export function createMtlsAgent(options: MtlsAgentOptions): https.Agent {
  return new MtlsAgent(options);
}

class MtlsAgent extends https.Agent {
  #context: SecureContext;
  readonly #verifier: PeerVerifier;
  readonly #unsubscribe: () => void;

  constructor(options: MtlsAgentOptions) {
    super(options.agent);
    this.#context = secureContextOf(currentSvid(options.source));
    this.#verifier = new PeerVerifier(options);
    this.#unsubscribe = options.source.onUpdate((next) => {
      this.#context = secureContextOf(next);
    });
  }

  override destroy(): void {
    this.#unsubscribe();
    this.#verifier.close();
    super.destroy();
  }

  // The callback form of Agent#createConnection: the socket is handed to HTTP only once the
  // server's SVID was verified, so no request is ever written to an unverified peer.
  override createConnection(options: tls.ConnectionOptions, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    const socket = tls.connect({ ...options, secureContext: this.#context, rejectUnauthorized: true, checkServerIdentity: () => undefined });
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      socket.removeListener('error', onError);
      if (err) {
        socket.destroy();
        callback(err);
      } else callback(null, socket);
    };
    const onError = (err: Error) => settle(err);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      this.#verifier.verify(socket).then(
        () => settle(null),
        (err: Error) => settle(err),
      );
    });
    return undefined;
  }
}
