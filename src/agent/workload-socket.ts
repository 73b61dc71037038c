import { chmodSync, chownSync, rmSync } from 'node:fs';
import net from 'node:net';
import type { EntryOwner } from './entry-owner.js';

/**
 * A message of the workload stream: newline-delimited JSON over a Unix socket. The SDK side is
 * `watchX509Svid` in src/sdk/workload-api.ts; keep the two in step.
 */
export type WorkloadMessage =
  | {
      readonly type: 'x509_svid';
      readonly spiffe_id: string;
      readonly svid_pem: string;
      readonly key_pem: string;
      readonly bundle_pem: string;
      /** RFC 3339 notAfter of the leaf. */
      readonly expires_at: string;
    }
  | { readonly type: 'revoked'; readonly serial_numbers: readonly string[]; readonly spiffe_id: string | null };

/**
 * Serves one registration entry's SVID on a Unix socket, `<entry dir>/workload.sock`, mode 0600:
 * who may connect is decided by the file system, exactly as for `key.pem` next to it, so the socket
 * gives away nothing the directory does not. A subscriber gets the current SVID at once and every
 * replacement after it.
 */
export class WorkloadSocket {
  readonly #server: net.Server;
  readonly #clients = new Set<net.Socket>();
  #current: WorkloadMessage | undefined;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async listen(path: string, owner?: EntryOwner): Promise<WorkloadSocket> {
    rmSync(path, { force: true });
    const server = net.createServer();
    const socket = new WorkloadSocket(server);
    server.on('connection', (c) => socket.#accept(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, 0o600);
    if (owner) chownSync(path, owner.uid, owner.gid ?? -1);
    return socket;
  }

  /** Sends `message` to every subscriber; an `x509_svid` also becomes what new subscribers receive first. */
  publish(message: WorkloadMessage): void {
    if (message.type === 'x509_svid') this.#current = message;
    const line = `${JSON.stringify(message)}\n`;
    for (const c of this.#clients) c.write(line);
  }

  get subscribers(): number {
    return this.#clients.size;
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(c: net.Socket): void {
    this.#clients.add(c);
    c.on('close', () => this.#clients.delete(c));
    c.on('error', () => c.destroy());
    // Nothing is read from the workload; whatever it sends is discarded.
    c.resume();
    if (this.#current) c.write(`${JSON.stringify(this.#current)}\n`);
  }
}
