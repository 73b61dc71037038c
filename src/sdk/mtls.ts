/**
 * mTLS between services with X.509-SVIDs: a server and an `https` agent that present the current
 * SVID of a {@link SvidSource}, swap it on rotation without dropping open connections, and accept
 * a peer only after its chain validates as an SVID against the current bundle, its SPIFFE ID is
 * authorized and, by default, its certificate is not on its issuer's CRL. Everything fails closed.
 *
 * OpenSSL validates the chain during the handshake; the SPIFFE checks, which need the whole chain
 * and may need a CRL download, run right after it and before a single byte of HTTP is read from
 * or written to the connection.
 *
 * No undici dispatcher: Node 20 bundles undici for `fetch` but does not expose it as an importable
 * module, and the brief forbids adding it as a dependency; use the `https` agent.
 */
import 'reflect-metadata';
import http, { type IncomingMessage, type RequestListener } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { CrlCache, type CrlFetcher } from './crl-cache.js';
import { OcspCache, type OcspFetcher } from './ocsp-cache.js';
import type { SvidMaterial, SvidSource } from './svid-source.js';
import { SvidError, type VerifiedSvid, verifySvid } from './svid.js';

/**
 * How peers' certificates are checked for revocation: `crl` (the default) fetches and caches the
 * issuer's CRL; `ocsp` asks the issuer's responder (with a nonce) and caches `good` answers; a
 * {@link CrlCache} or {@link OcspCache} shares one cache (call its `invalidate` on a revocation
 * event); `none` skips the check.
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
}

function currentSvid(source: SvidSource): SvidMaterial {
  const svid = source.current();
  if (!svid) throw new SvidError('svid.malformed', 'the SVID source has no SVID yet');
  return svid;
}

/** HTTPS GET of a CRL, or POST of an OCSP request, trusting only the bundle the caller currently holds. */
function httpsFetcher(source: SvidSource): (url: string, body?: Uint8Array) => Promise<Uint8Array> {
  return (url, body) =>
    new Promise((resolve, reject) => {
      const options = { ca: currentSvid(source).bundlePem, timeout: 10_000, method: body ? 'POST' : 'GET', headers: body ? { 'content-type': 'application/ocsp-request' } : {} };
      const req = https.request(url, options, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${options.method} ${url}: HTTP ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
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

/** Checks a peer once its handshake finished: SVID rules and authorization, then revocation. */
class PeerVerifier {
  readonly #source: SvidSource;
  readonly #authorize: MtlsOptions['authorize'];
  readonly #now: () => Date;
  readonly #revocation: CrlCache | OcspCache | undefined;

  constructor(options: MtlsOptions) {
    this.#source = options.source;
    this.#authorize = options.authorize;
    this.#now = options.now ?? (() => new Date());
    const revocation = options.revocation ?? 'crl';
    const fetcher = httpsFetcher(options.source);
    if (revocation === 'none') this.#revocation = undefined;
    else if (revocation === 'crl') this.#revocation = new CrlCache({ fetch: options.fetchCrl ?? ((url) => fetcher(url)), now: this.#now });
    else if (revocation === 'ocsp') this.#revocation = new OcspCache({ fetch: options.fetchOcsp ?? fetcher, now: this.#now });
    else this.#revocation = revocation;
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

const secureContextOf = (svid: SvidMaterial): SecureContext => tls.createSecureContext({ cert: svid.svidPem, key: svid.keyPem, ca: svid.bundlePem, minVersion: 'TLSv1.3' });

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
