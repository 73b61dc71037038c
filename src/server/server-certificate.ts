/**
 * The control plane's own TLS certificate, issued by its online intermediate and kept in
 * `<data-dir>/tls/` so that a restart reuses it, and renewed while the server runs: when two
 * thirds of its lifetime have passed (the margin step-ca's `--renew-period` defaults to, and the
 * one SPIRE agents use for their SVIDs), and as soon as an intermediate rotation makes another CA
 * the issuer (the old intermediate is retired once its last leaf expires, and a server certificate
 * that outlived it would keep it alive for up to 90 days). The listener takes a renewed
 * certificate with `setSecureContext`, which applies to new handshakes only: established
 * connections keep theirs and are not dropped.
 *
 * A renewal that fails (the store is unreachable, the CA sealed) leaves the current certificate
 * in force and is retried a minute later; it is logged each time.
 */
import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { X509Certificate as NodeX509Certificate, createPrivateKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Cancel, Scheduler } from '../core/scheduler.js';
import { replaceFileAtomically } from '../core/atomic-file.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { chainPem, issueServerCertificate } from '../pki/ca.js';
import type { CaHierarchy } from '../pki/hierarchy.js';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../pki/keys.js';

export const SERVER_CERT_TTL_MS = 90 * 86_400_000;
/** After a failed renewal, the next attempt. */
const RETRY_MS = 60_000;

export interface ServerCertificateOptions {
  readonly ca: CaHierarchy;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly files: { readonly serverCert: string; readonly serverKey: string };
  /** Runs renewals when they are due; tests pass a ManualScheduler and move the clock. */
  readonly scheduler: Scheduler;
  /** Makes due CA transitions before a renewal, so that a timed intermediate activation is seen. */
  readonly refreshCa: () => Promise<void>;
}

interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
  readonly leaf: x509.X509Certificate;
}

export class ServerCertificate {
  readonly #options: ServerCertificateOptions;
  #current: Issued;
  readonly #listeners = new Set<() => void>();
  #cancel: Cancel | undefined;
  #unwatch: (() => void) | undefined;
  #renewing: Promise<void> | undefined;
  #stopped = false;

  private constructor(options: ServerCertificateOptions, current: Issued) {
    this.#options = options;
    this.#current = current;
  }

  /**
   * The certificate in the data directory when it is still good (its key matches, it chains to
   * the current intermediate and a third of its life remains), or a new one written there.
   */
  static async open(options: ServerCertificateOptions): Promise<ServerCertificate> {
    const { files, clock, ca } = options;
    if (existsSync(files.serverCert) && existsSync(files.serverKey)) {
      const stored = loaded(readFileSync(files.serverCert, 'utf8'), readFileSync(files.serverKey, 'utf8'));
      if (stored && clock.now().getTime() < renewalTime(stored.leaf) && (await issuedBy(stored.leaf, ca, clock.now()))) return new ServerCertificate(options, stored);
    }
    return new ServerCertificate(options, await issue(options));
  }

  /** PEM chain, leaf first. */
  get certPem(): string {
    return this.#current.certPem;
  }

  /** PEM PKCS #8. */
  get keyPem(): string {
    return this.#current.keyPem;
  }

  /** The current certificate's serial, lowercase hex. */
  get serialNumber(): string {
    return this.#current.leaf.serialNumber;
  }

  /** Calls `listener` after every renewal (the files are already replaced); returns the unsubscribe. */
  onRenew(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Schedules the next renewal; `watchBundle` (the PKI event hub's) triggers one when the issuing intermediate changed. */
  start(watchBundle: (watcher: () => void) => () => void): void {
    this.#schedule(new Date(renewalTime(this.#current.leaf)));
    this.#unwatch = watchBundle(() => void this.#renewIfReissued());
  }

  /** Stops renewing; waits for a renewal in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    this.#cancel?.();
    await this.#renewing?.catch(() => undefined);
  }

  /** Issues, stores and publishes a new certificate now (one at a time); rejects when it could not. */
  renew(): Promise<void> {
    this.#renewing ??= this.#renew().finally(() => (this.#renewing = undefined));
    return this.#renewing;
  }

  async #renew(): Promise<void> {
    await this.#options.refreshCa();
    const next = await issue(this.#options);
    this.#current = next;
    this.#options.logger.info({ serial: next.leaf.serialNumber, not_after: next.leaf.notAfter.toISOString(), file: this.#options.files.serverCert }, 'renewed the server TLS certificate');
    for (const listener of this.#listeners) listener();
  }

  #schedule(at: Date): void {
    if (this.#stopped) return;
    this.#cancel?.();
    this.#cancel = this.#options.scheduler.schedule(at, () => this.#renewAndReschedule());
  }

  async #renewAndReschedule(): Promise<void> {
    try {
      await this.renew();
      this.#schedule(new Date(renewalTime(this.#current.leaf)));
    } catch (err) {
      this.#options.logger.error({ err }, 'could not renew the server TLS certificate; the current one stays in force, retrying in a minute');
      this.#schedule(new Date(this.#options.clock.now().getTime() + RETRY_MS));
    }
  }

  async #renewIfReissued(): Promise<void> {
    if (await issuedBy(this.#current.leaf, this.#options.ca, this.#options.clock.now())) return;
    await this.#renewAndReschedule();
  }
}

/** Two thirds into the certificate's lifetime. */
function renewalTime(leaf: x509.X509Certificate): number {
  const from = leaf.notBefore.getTime();
  return from + ((leaf.notAfter.getTime() - from) * 2) / 3;
}

async function issuedBy(leaf: x509.X509Certificate, ca: CaHierarchy, at: Date): Promise<boolean> {
  const issuer = ca.intermediate.certificate;
  return leaf.issuer === issuer.subject && (await leaf.verify({ publicKey: issuer.publicKey, date: at }).catch(() => false));
}

/** The stored pair, or undefined when it does not parse or the key is not the certificate's (a write interrupted between the two renames). */
function loaded(certPem: string, keyPem: string): Issued | undefined {
  try {
    if (!new NodeX509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) return undefined;
    return { certPem, keyPem, leaf: new x509.X509Certificate(certPem) };
  } catch {
    return undefined;
  }
}

/**
 * A fresh key and certificate, written key first (0600) then certificate, each replaced
 * atomically; {@link ServerCertificate.open} refuses a mismatched pair left by a crash between them.
 */
async function issue(options: ServerCertificateOptions): Promise<Issued> {
  const { ca, clock, files } = options;
  const keys = await generateKeyPair('ecdsa-p256');
  const leaf = await issueServerCertificate(ca.intermediate, {
    publicKey: keys.publicKey,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    commonName: 'rampart server',
    clock,
    ttlMs: SERVER_CERT_TTL_MS,
  });
  const certPem = chainPem(leaf, ca.intermediate.certificate);
  const keyPem = await exportPrivateKeyPkcs8Pem(keys.privateKey);
  replaceFileAtomically(files.serverKey, keyPem, 0o600);
  replaceFileAtomically(files.serverCert, certPem, 0o644);
  return { certPem, keyPem, leaf };
}
