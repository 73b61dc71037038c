/**
 * `rampart agent`: the node agent of docs/pki.md ("The agent"), after SPIRE's agent. It attests
 * its node once, keeps its own SVID fresh, and for every registration entry it is the parent of
 * keeps an SVID on disk (`<dir>/<entry id>/svid.pem`, `key.pem`, `bundle.pem`) and on a Unix
 * socket for SDK subscribers, rotating each at half its lifetime with jitter. Revocations the
 * control plane announces on `GET /v1/pki/events` are forwarded to subscribers and the affected
 * SVIDs reissued at once; a bundle change rewrites every `bundle.pem` and is pushed too.
 *
 * Every key is generated on this host and only CSRs leave it. Time comes from the injected clock
 * and scheduler, so tests advance time instead of waiting for half-lives.
 */
import 'reflect-metadata';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { type Clock, systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { RampartApiError, RampartClient } from '../sdk/client.js';
import { newKeyAndCsr } from './csr.js';
import { type EntryOwner, entryOwner } from './entry-owner.js';
import { rotationTime } from './rotation.js';
import { type Cancel, type Scheduler, TimerScheduler } from '../core/scheduler.js';
import { fetchText, followEventStream, type ServerSentEvent } from './server-events.js';
import { KEY_FILE, SVID_FILE, writeSvidFiles } from './svid-files.js';
import { type WorkloadMessage, WorkloadSocket } from './workload-socket.js';

export type AgentAttestation = { readonly joinToken: string } | { readonly k8sTokenFile: string };

export interface AgentOptions {
  /** Base URL of the control plane, e.g. `https://rampart.internal:8443`. */
  readonly server: string;
  /** PEM trust anchors for the control plane's TLS certificate (its `ca.pem`). */
  readonly caPem: string;
  /** Where identities are written: `<dir>/agent/` for the agent's own, `<dir>/<entry id>/` per entry. */
  readonly dir: string;
  /**
   * Evidence for the first attestation; unused while `<dir>/agent/` holds an unexpired SVID that
   * the server still accepts (one revoked while the agent was down is discarded, and the agent
   * attests with this evidence instead).
   */
  readonly attestation: AgentAttestation;
  readonly clock?: Clock;
  readonly scheduler?: Scheduler;
  /** Jitter source in [0, 1); tests fix it. */
  readonly random?: () => number;
  /** How often the entry list is re-read (new and deleted entries). Default 30 s. */
  readonly syncIntervalMs?: number;
  /** Wait before following the event stream again after it ended. Default 5 s. */
  readonly reconnectMs?: number;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** What the agent currently holds for one registration entry. */
export interface EntryStatus {
  readonly id: string;
  readonly spiffeId: string;
  readonly serialNumber: string;
  readonly notAfter: Date;
  readonly rotateAt: Date;
  readonly dir: string;
  readonly socketPath: string;
}

interface Svid {
  readonly spiffeId: string;
  /** Leaf then intermediate. */
  readonly chainPem: string;
  readonly keyPem: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

interface EntryState {
  status: EntryStatus;
  svid: Svid;
  readonly socket: WorkloadSocket;
  cancel: Cancel;
}

/** Root can give an entry's files to the user its selectors name; anyone else keeps them. */
const canChown = (): boolean => process.getuid?.() === 0;

interface SignedView {
  spiffe_id: string;
  certificate: string;
  issuing_ca: string;
  serial_number: string;
}
interface RegistrationView {
  id: string;
  spiffe_id: string;
  selectors: string[];
}

const AGENT_DIR = 'agent';
/** The most entries `POST /v1/pki/agent/svids` takes in one request. */
const MAX_BATCH = 100;
const SOCKET_FILE = 'workload.sock';

export class RampartAgent {
  readonly #o: AgentOptions;
  readonly #clock: Clock;
  readonly #scheduler: Scheduler;
  readonly #random: () => number;
  readonly #entries = new Map<string, EntryState>();
  /** Each entry's owner (from its `unix:uid:`/`unix:gid:` selectors), as of the last sync. */
  readonly #owners = new Map<string, EntryOwner | undefined>();
  #own: Svid | undefined;
  #client: RampartClient | undefined;
  #bundlePem = '';
  #cancelOwn: Cancel = () => undefined;
  #cancelSync: Cancel = () => undefined;
  #closeEvents: () => void = () => undefined;
  #stopped = false;
  /** Serializes syncs and reissues so two never race over one entry. */
  #queue: Promise<void> = Promise.resolve();

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#scheduler = options.scheduler ?? new TimerScheduler(this.#clock);
    this.#random = options.random ?? Math.random;
  }

  /** The agent's own SPIFFE ID, once started. */
  get spiffeId(): string | undefined {
    return this.#own?.spiffeId;
  }

  get ownSerialNumber(): string | undefined {
    return this.#own?.serialNumber;
  }

  /** What the agent holds per entry, by entry id. */
  entries(): EntryStatus[] {
    return [...this.#entries.values()].map((e) => e.status).sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Attests (or resumes with the SVID kept in `<dir>/agent/`), fetches the trust bundle, issues
   * every entry's SVID, and starts following events.
   *
   * @throws when attestation is refused (the server's code is in the RampartApiError)
   */
  async start(): Promise<void> {
    // Traversable by every workload user; each entry directory below it is 0700 and its owner's.
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o755 });
    this.#bundlePem = await fetchText(new URL('/v1/pki/ca/pem', this.#o.server), this.#o.caPem);
    const resumed = await this.#resume();
    this.#setOwn(resumed ?? (await this.#attest()));
    try {
      await this.sync();
    } catch (err) {
      // Revoked while the agent was down: the kept SVID is worthless, the evidence given may not be.
      if (!resumed || !(err instanceof RampartApiError && err.code === 'auth.client_cert_revoked')) throw err;
      this.#o.logger?.warn({ serial_number: resumed.serialNumber }, "the agent's kept SVID was revoked while it was down; attesting again");
      this.#discardOwn();
      this.#setOwn(await this.#attest());
      await this.sync();
    }
    this.#follow();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelOwn();
    this.#cancelSync();
    this.#closeEvents();
    await this.#queue.catch(() => undefined);
    for (const e of this.#entries.values()) {
      e.cancel();
      await e.socket.close();
    }
    this.#entries.clear();
    this.#client?.close();
  }

  /** Reads the entries this agent is the parent of, issues SVIDs for new ones and drops deleted ones. */
  sync(): Promise<void> {
    // The next sync is scheduled first, so a failed one (server unreachable) is retried.
    this.#cancelSync();
    this.#cancelSync = this.#scheduler.schedule(new Date(this.#clock.now().getTime() + (this.#o.syncIntervalMs ?? 30_000)), () => this.#safely('sync', () => this.sync()));
    return this.#serialized(async () => {
      const { items } = await this.#api().request<{ items: RegistrationView[] }>('GET', '/v1/pki/agent/registrations');
      const wanted = new Set(items.map((e) => e.id));
      for (const e of items) this.#owners.set(e.id, canChown() ? entryOwner(e.selectors) : undefined);
      for (const [id, state] of this.#entries) {
        if (wanted.has(id)) continue;
        state.cancel();
        await state.socket.close();
        rmSync(state.status.dir, { recursive: true, force: true });
        this.#entries.delete(id);
        this.#owners.delete(id);
        this.#o.logger?.info({ registration_id: id }, 'registration entry removed; its SVID files were deleted');
      }
      await this.#issue(items.filter((e) => !this.#entries.has(e.id)).map((e) => e.id));
    });
  }

  /** Replaces the SVIDs of `ids` now (rotation, revocation), in one request. */
  reissue(ids: readonly string[]): Promise<void> {
    return this.#serialized(() => this.#issue(ids.filter((id) => this.#entries.has(id))));
  }

  async #issue(all: readonly string[]): Promise<void> {
    for (let i = 0; i < all.length; i += MAX_BATCH) await this.#issueBatch(all.slice(i, i + MAX_BATCH));
  }

  async #issueBatch(ids: readonly string[]): Promise<void> {
    const keys = new Map<string, { keyPem: string; csrPem: string }>();
    for (const id of ids) keys.set(id, await newKeyAndCsr());
    const { svids } = await this.#api().request<{ svids: (SignedView & { registration_id: string })[] }>('POST', '/v1/pki/agent/svids', {
      body: { requests: ids.map((id) => ({ registration_id: id, csr: keys.get(id)!.csrPem })) },
    });
    for (const signed of svids) {
      const svid = svidOf(signed, keys.get(signed.registration_id)!.keyPem);
      await this.#install(signed.registration_id, svid);
    }
  }

  async #install(id: string, svid: Svid): Promise<void> {
    const dir = join(this.#o.dir, id);
    const owner = this.#owners.get(id);
    writeSvidFiles(dir, { svidPem: svid.chainPem, keyPem: svid.keyPem, bundlePem: this.#bundlePem }, owner);
    let state = this.#entries.get(id);
    if (!state) {
      const socket = await WorkloadSocket.listen(join(dir, SOCKET_FILE), owner);
      state = { socket, cancel: () => undefined, status: undefined as unknown as EntryStatus, svid };
      this.#entries.set(id, state);
    }
    state.cancel();
    state.svid = svid;
    const rotateAt = rotationTime(svid.notBefore, svid.notAfter, this.#random);
    state.status = { id, spiffeId: svid.spiffeId, serialNumber: svid.serialNumber, notAfter: svid.notAfter, rotateAt, dir, socketPath: join(dir, SOCKET_FILE) };
    state.cancel = this.#scheduler.schedule(rotateAt, () => this.#rotate(id));
    state.socket.publish(this.#svidMessage(svid));
    this.#o.logger?.info({ registration_id: id, spiffe_id: svid.spiffeId, serial_number: svid.serialNumber, rotate_at: rotateAt.toISOString() }, 'SVID written');
  }

  #svidMessage(svid: Svid): WorkloadMessage {
    return { type: 'x509_svid', spiffe_id: svid.spiffeId, svid_pem: svid.chainPem, key_pem: svid.keyPem, bundle_pem: this.#bundlePem, expires_at: svid.notAfter.toISOString() };
  }

  /** A failed rotation is retried after `reconnectMs` until it succeeds or the SVID is replaced otherwise. */
  async #rotate(id: string): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.reissue([id]);
    } catch (err) {
      this.#o.logger?.error({ err, registration_id: id }, 'SVID rotation failed; will retry');
      const state = this.#entries.get(id);
      if (state) state.cancel = this.#scheduler.schedule(new Date(this.#clock.now().getTime() + (this.#o.reconnectMs ?? 5_000)), () => this.#rotate(id));
    }
  }

  async #resume(): Promise<Svid | undefined> {
    const dir = join(this.#o.dir, AGENT_DIR);
    if (!existsSync(join(dir, SVID_FILE)) || !existsSync(join(dir, KEY_FILE))) return undefined;
    const chainPem = readFileSync(join(dir, SVID_FILE), 'utf8');
    const leaf = new x509.X509Certificate(chainPem);
    if (leaf.notAfter.getTime() <= this.#clock.now().getTime()) return undefined;
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    const spiffeId = san?.names.items.find((n) => n.type === 'url')?.value;
    if (!spiffeId) return undefined;
    return { spiffeId, chainPem, keyPem: readFileSync(join(dir, KEY_FILE), 'utf8'), serialNumber: leaf.serialNumber.toLowerCase(), notBefore: leaf.notBefore, notAfter: leaf.notAfter };
  }

  async #attest(): Promise<Svid> {
    const evidence = 'joinToken' in this.#o.attestation ? { join_token: this.#o.attestation.joinToken } : { k8s_token: readFileSync(this.#o.attestation.k8sTokenFile, 'utf8').trim() };
    const { keyPem, csrPem } = await newKeyAndCsr();
    const anonymous = new RampartClient({ addr: this.#o.server, caPem: this.#o.caPem });
    try {
      const signed = await anonymous.request<SignedView>('POST', '/v1/pki/agent/attest', { body: { ...evidence, csr: csrPem } });
      this.#o.logger?.info({ spiffe_id: signed.spiffe_id, serial_number: signed.serial_number }, 'node attested');
      return svidOf(signed, keyPem);
    } finally {
      anonymous.close();
    }
  }

  /**
   * The agent's own SVID was revoked: it can no longer renew or fetch anything with it. A
   * Kubernetes token file holds fresh evidence (the kubelet rotates it), so the agent attests
   * again. A join token was spent on the first attestation and stays spent: that it works once is
   * what makes a leaked, used token worthless, and a revocation is exactly the moment not to let
   * old evidence back in. So the agent drops the revoked SVID (a restart must not resume with it),
   * keeps serving the workload SVIDs it holds until they expire, and waits for an operator: a new
   * token for the same ID (`rampart agent token create --spiffe-id <agent id>`) and a restart.
   */
  async #reattest(): Promise<void> {
    const revoked = this.#own!.serialNumber;
    if (!('k8sTokenFile' in this.#o.attestation)) {
      this.#discardOwn();
      this.#o.logger?.error(
        { serial_number: revoked, spiffe_id: this.#own!.spiffeId },
        `the agent's own SVID was revoked and its join token is spent; to bring the agent back, run \`rampart agent token create --spiffe-id ${this.#own!.spiffeId}\` and restart it with --join-token <the new token>`,
      );
      return;
    }
    this.#setOwn(await this.#attest());
    this.#o.logger?.warn({ revoked_serial_number: revoked, serial_number: this.#own!.serialNumber }, "the agent's own SVID was revoked; attested again with the Kubernetes token");
    this.#closeEvents();
    this.#follow();
  }

  /** Renews the agent's own SVID over mTLS with its current one (`pki:sign` for its own ID). */
  async #renewOwn(): Promise<void> {
    const { keyPem, csrPem } = await newKeyAndCsr();
    const signed = await this.#api().request<SignedView>('POST', '/v1/pki/sign', { body: { csr: csrPem } });
    this.#setOwn(svidOf(signed, keyPem));
  }

  /** Forgets the agent's own SVID on disk and stops renewing it (it was revoked). */
  #discardOwn(): void {
    this.#cancelOwn();
    rmSync(join(this.#o.dir, AGENT_DIR), { recursive: true, force: true });
  }

  #setOwn(svid: Svid): void {
    this.#own = svid;
    writeSvidFiles(join(this.#o.dir, AGENT_DIR), { svidPem: svid.chainPem, keyPem: svid.keyPem, bundlePem: this.#bundlePem });
    this.#client?.close();
    this.#client = new RampartClient({ addr: this.#o.server, caPem: this.#o.caPem, clientCert: { certPem: svid.chainPem, keyPem: svid.keyPem } });
    this.#cancelOwn();
    this.#cancelOwn = this.#scheduler.schedule(rotationTime(svid.notBefore, svid.notAfter, this.#random), () => this.#safely('renew own SVID', () => this.#renewOwn()));
  }

  #follow(): void {
    if (this.#stopped || !this.#own) return;
    this.#closeEvents = followEventStream({
      url: new URL('/v1/pki/events', this.#o.server),
      caPem: this.#o.caPem,
      certPem: this.#own.chainPem,
      keyPem: this.#own.keyPem,
      onEvent: (e) => void this.#safely('event', () => this.#onEvent(e)),
      onEnd: (err) => {
        if (this.#stopped) return;
        this.#o.logger?.warn({ err }, 'event stream ended; reconnecting');
        this.#scheduler.schedule(new Date(this.#clock.now().getTime() + (this.#o.reconnectMs ?? 5_000)), async () => {
          this.#follow();
          await this.#safely('sync', () => this.sync());
        });
      },
    });
  }

  async #onEvent(e: ServerSentEvent): Promise<void> {
    if (e.event === 'bundle') {
      // A CA was added or retired: every workload needs the new bundle, not a new SVID.
      this.#bundlePem = await fetchText(new URL('/v1/pki/ca/pem', this.#o.server), this.#o.caPem);
      await this.#serialized(async () => {
        for (const [id, state] of this.#entries) {
          writeSvidFiles(state.status.dir, { svidPem: state.svid.chainPem, keyPem: state.svid.keyPem, bundlePem: this.#bundlePem }, this.#owners.get(id));
          state.socket.publish(this.#svidMessage(state.svid));
        }
      });
      return;
    }
    if (e.event !== 'revoked') return;
    const { serial_numbers: serials, spiffe_id: spiffeId } = JSON.parse(e.data) as { serial_numbers: string[]; spiffe_id: string | null };
    const revoked = new Set(serials.map((s) => s.replace(/^00/, '')));
    if (this.#own && revoked.has(this.#own.serialNumber.replace(/^00/, ''))) await this.#reattest();
    const hit = [...this.#entries.values()].filter((s) => revoked.has(s.status.serialNumber.replace(/^00/, '')));
    for (const s of hit) s.socket.publish({ type: 'revoked', serial_numbers: serials, spiffe_id: spiffeId });
    if (hit.length > 0) await this.reissue(hit.map((s) => s.status.id));
  }

  #api(): RampartClient {
    if (!this.#client) throw new Error('the agent has not attested yet');
    return this.#client;
  }

  #serialized(work: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Scheduled work logs its failure and is retried by the next sync or rotation; it never crashes the agent. */
  async #safely(what: string, work: () => Promise<void>): Promise<void> {
    if (this.#stopped) return;
    try {
      await work();
    } catch (err) {
      this.#o.logger?.error({ err }, `agent ${what} failed`);
    }
  }
}

function svidOf(signed: SignedView, keyPem: string): Svid {
  const leaf = new x509.X509Certificate(signed.certificate);
  const chainPem = signed.certificate.includes(signed.issuing_ca.trim()) ? signed.certificate : `${signed.certificate.trim()}\n${signed.issuing_ca.trim()}\n`;
  return { spiffeId: signed.spiffe_id, chainPem, keyPem, serialNumber: signed.serial_number, notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

