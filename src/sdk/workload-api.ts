/**
 * The workload side of the agent's Unix socket (src/agent/workload-socket.ts): a service on the
 * agent's host subscribes to its registration entry's socket and receives its X.509-SVID, key and
 * trust bundle at once and again on every rotation, and a notice when the control plane revoked
 * its certificate (a replacement follows). Newline-delimited JSON; no Rampart credentials needed:
 * access to the socket is access to the entry's directory.
 */
import net from 'node:net';

/**
 * An SVID as the agent delivers it.
 *
 * @example
 * ```ts
 * const update: X509SvidUpdate = { spiffeId: 'spiffe://default.rampart.local/ns/pay/sa/api', svidPem, keyPem, bundlePem, expiresAt: new Date() };
 * ```
 */
export interface X509SvidUpdate {
  readonly spiffeId: string;
  /** PEM: the leaf followed by its intermediate. */
  readonly svidPem: string;
  /** PEM PKCS #8 private key of the leaf. */
  readonly keyPem: string;
  /** PEM: the CAs to trust for peers. */
  readonly bundlePem: string;
  readonly expiresAt: Date;
}

/**
 * Optional callbacks of {@link watchX509Svid}.
 *
 * @example
 * ```ts
 * const options: WatchOptions = { onRevoked: (serials) => log.warn({ serials }, 'revoked'), onError: (err) => log.error({ err }) };
 * ```
 */
export interface WatchOptions {
  /** The control plane revoked these serials of this workload; a replacement SVID follows. */
  readonly onRevoked?: (serialNumbers: readonly string[]) => void;
  /** The connection failed or a message was malformed; the watch reconnects after `retryMs`. */
  readonly onError?: (err: Error) => void;
  /** Wait before reconnecting after the socket closed. Default 1 s. */
  readonly retryMs?: number;
}

/**
 * A running watch.
 *
 * @example
 * ```ts
 * const watch: X509SvidWatch = watchX509Svid(path, onUpdate);
 * watch.close();
 * ```
 */
export interface X509SvidWatch {
  /** Stops watching and closes the connection. */
  close(): void;
}

interface WireSvid {
  type: 'x509_svid';
  spiffe_id: string;
  svid_pem: string;
  key_pem: string;
  bundle_pem: string;
  expires_at: string;
}
interface WireRevoked {
  type: 'revoked';
  serial_numbers: string[];
}

/**
 * Subscribes to the agent socket of one registration entry (`<agent dir>/<entry id>/workload.sock`)
 * and calls `onUpdate` with the current SVID and each replacement. Reconnects until closed, so an
 * agent restart is survived.
 *
 * @example
 * ```ts
 * import { watchX509Svid } from 'rampart/sdk';
 * const watch = watchX509Svid('/var/run/rampart/reg_abc/workload.sock', (svid) => {
 *   server.setSecureContext({ cert: svid.svidPem, key: svid.keyPem, ca: svid.bundlePem });
 * });
 * process.on('SIGTERM', () => watch.close());
 * ```
 */
export function watchX509Svid(socketPath: string, onUpdate: (svid: X509SvidUpdate) => void, options: WatchOptions = {}): X509SvidWatch {
  let closed = false;
  let socket: net.Socket | undefined;
  let retry: NodeJS.Timeout | undefined;
  const connect = () => {
    let buffer = '';
    const s = net.connect(socketPath);
    socket = s;
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        deliver(line);
      }
    });
    s.on('error', (err) => options.onError?.(err));
    s.on('close', () => {
      if (closed) return;
      retry = setTimeout(connect, options.retryMs ?? 1_000);
      retry.unref();
    });
  };
  const deliver = (line: string) => {
    let message: WireSvid | WireRevoked;
    try {
      message = JSON.parse(line) as WireSvid | WireRevoked;
    } catch (err) {
      options.onError?.(new Error('the agent sent a line that is not JSON', { cause: err }));
      return;
    }
    if (message.type === 'x509_svid') {
      onUpdate({ spiffeId: message.spiffe_id, svidPem: message.svid_pem, keyPem: message.key_pem, bundlePem: message.bundle_pem, expiresAt: new Date(message.expires_at) });
    } else if (message.type === 'revoked') {
      options.onRevoked?.(message.serial_numbers);
    }
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      socket?.destroy();
    },
  };
}
