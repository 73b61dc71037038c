/**
 * The undici counterpart of {@link createMtlsAgent}: an undici `Agent` for `undici.request`,
 * `undici.fetch(url, { dispatcher })` and anything else that takes a dispatcher. Every new
 * connection presents the SVID that is current when it is opened and is handed to undici only
 * after the server's SVID passed the same {@link PeerVerifier} checks as the `https` agent and
 * the mTLS server (chain against the current bundle, SPIFFE ID authorization, revocation; all
 * fail closed). A rotation changes the TLS context of later connections only: the connections
 * undici already pools keep serving requests.
 */
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import { currentSvid, type MtlsOptions, PeerVerifier, secureContextOf } from './mtls.js';
import { SvidError } from './svid.js';
import type { SvidMaterial } from './svid-source.js';

export interface MtlsDispatcherOptions extends MtlsOptions {
  /** Passed to undici's `Agent` (connections per origin, keep-alive and body timeouts, …); its own `connect` is replaced. */
  readonly agent?: Omit<Agent.Options, 'connect'>;
  /** Called with each refused server's reason (the connection is already closed; the request fails with the same error). */
  readonly onRefused?: (err: Error) => void;
}

/**
 * Opens TLS connections with the current SVID through undici's own connector (its connect
 * timeout, TCP keep-alive and no-delay settings), then verifies the peer before undici sees it.
 */
class VerifyingConnector {
  readonly #options: MtlsDispatcherOptions;
  readonly #verifier: PeerVerifier;
  #connect: buildConnector.connector;
  readonly #unsubscribe: () => void;

  constructor(options: MtlsDispatcherOptions) {
    this.#options = options;
    this.#verifier = new PeerVerifier(options);
    this.#connect = this.#connectorFor(currentSvid(options.source));
    this.#unsubscribe = options.source.onUpdate((next) => {
      this.#connect = this.#connectorFor(next);
    });
  }

  /** Stops following the source and releases the verifier's share of the default revocation feed. */
  stop(): void {
    this.#unsubscribe();
    this.#verifier.close();
  }

  // Host names are not checked (the SPIFFE ID is the identity), and TLS sessions are not cached:
  // a resumed session would carry the previous SVID's authentication past a rotation, and it is
  // the full handshake's chain that the verifier checks.
  #connectorFor(svid: SvidMaterial): buildConnector.connector {
    const timeout = this.#options.agent?.connectTimeout;
    return buildConnector({ secureContext: secureContextOf(svid), rejectUnauthorized: true, checkServerIdentity: () => undefined, maxCachedSessions: 0, ...(timeout === undefined ? {} : { timeout }) });
  }

  readonly connect: buildConnector.connector = (options, callback) => {
    const refuse = (err: Error) => {
      this.#options.onRefused?.(err);
      callback(err, null);
    };
    // `http:` would reach undici's plain TCP path: no SVID, no peer check. Fail closed instead.
    if (options.protocol !== 'https:') {
      refuse(new SvidError('svid.untrusted', `an mTLS dispatcher only connects to https: origins, not ${options.protocol}`));
      return;
    }
    this.#connect(options, (err, socket) => {
      if (err || !socket) {
        callback(err ?? new Error('undici connector returned no socket'), null);
        return;
      }
      // undici's connector keeps its own 'error' listener on the socket, so a reset during the
      // checks is not an unhandled error; nothing reads or writes the socket until they pass.
      this.#verifier.verify(socket as TLSSocket).then(
        () => callback(null, socket),
        (reason: Error) => {
          socket.destroy();
          refuse(reason);
        },
      );
    });
  };
}

/**
 * An undici `Agent` that presents the current SVID and accepts a server only if its SVID is
 * authorized (host names are not checked). Rotations of `source` apply to new connections;
 * pooled connections carry on. `close()` or `destroy()` also stops following `source` and
 * releases the default revocation feed it shares with everything else built on `source` (closed
 * with the last of them): call one of them, since a dispatcher dropped without it keeps that
 * stream open for the life of the process.
 *
 * @example
 * ```ts
 * import { fetch, request } from 'undici';
 * const dispatcher = createMtlsDispatcher({ source, authorize: ['spiffe://acme.rampart.local/ns/pay/sa/api'] });
 * const { body } = await request('https://pay.internal:8443/balance', { dispatcher });
 * const res = await fetch('https://pay.internal:8443/balance', { dispatcher });
 * ```
 */
export function createMtlsDispatcher(options: MtlsDispatcherOptions): Agent {
  return new MtlsDispatcher(options);
}

class MtlsDispatcher extends Agent {
  readonly #stop: () => void;

  constructor(options: MtlsDispatcherOptions) {
    const connector = new VerifyingConnector(options);
    super({ ...options.agent, connect: connector.connect });
    this.#stop = () => connector.stop();
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#stop();
    return callback ? super.close(callback) : super.close();
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    this.#stop();
    if (typeof errOrCallback === 'function') return super.destroy(errOrCallback);
    if (callback) return super.destroy(errOrCallback ?? null, callback);
    return super.destroy(errOrCallback ?? null);
  }
}
