/**
 * The CA hierarchy a server signs and answers with: roots, cross-certificates and intermediates
 * as the store holds them, loaded with the keys that are online, and kept current as rotations
 * (rotation.ts, rotation-external.ts) and time move CAs through their states.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import { randomId } from '../core/ids.js';
import type { Sealer } from '../core/sealer.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from './ca.js';
import { exportPrivateKeyPkcs8Pem, importPrivateKeyPkcs8Pem, type KeyAlgorithm } from './keys.js';
import type { CaRecord, CaStore, CertificateStore } from './store.js';

/** What rotation needs from the stores, inside one transaction. */
export interface CaStores {
  readonly ca: CaStore;
  readonly certificates: CertificateStore;
}
/** Runs `work` in one store transaction (the runtime's `transact`). */
export type CaTransact = <T>(work: (stores: CaStores) => Promise<T>) => Promise<T>;

/**
 * The CA hierarchy as it stands now. The properties are live: after {@link CaHierarchy.refresh}
 * sees a rotation (made here or by another replica), `intermediate` is the new signing CA and
 * `trusted` the new bundle, for every holder of this object.
 */
export interface CaHierarchy {
  /** Trusted roots, oldest first. */
  readonly roots: readonly x509.X509Certificate[];
  /** The online issuing CA. */
  readonly intermediate: CertificateAuthority;
  /**
   * Every certificate relying parties should hold: the roots, then cross-certificates, then the
   * intermediates that are prepared (not yet signing), active, or previous (still validating).
   */
  readonly trusted: readonly x509.X509Certificate[];
  /** Intermediates whose CRL and OCSP still answer: the active one first, then previous ones. */
  readonly issuers: readonly CertificateAuthority[];
  /** The trust bundle's sequence number (SPIFFE bundle `spiffe_sequence`); it grows on every change. */
  readonly sequence: number;
  /**
   * The path above a leaf of `issuer`, nearest first, up to a root: the intermediate, and while
   * it sits under a newer root that an older one cross-signed, the cross-certificate and the
   * older root, so relying parties that still trust only the older root validate it too.
   */
  chainOf(issuer: CertificateAuthority): x509.X509Certificate[];
  /**
   * Makes due transitions (a prepared intermediate whose activation time passed; a previous one
   * whose last leaf expired) and reloads when the bundle changed. Cheap when nothing did: at most
   * one store read per `REFRESH_INTERVAL_MS` unless `force`.
   */
  refresh(stores: CaStores, transact: CaTransact, force?: boolean): Promise<void>;
}

/** Records are owned by the operator tenant; per-tenant trust domains share the hierarchy. */
export const CA_TENANT = 'default';

/** How stale another replica's rotation may look here; far below any propagation delay. */
const REFRESH_INTERVAL_MS = 1_000;
const RETIREMENT_CHECK_MS = 60_000;

interface LoadedState {
  readonly roots: x509.X509Certificate[];
  readonly crosses: x509.X509Certificate[];
  readonly intermediate: CertificateAuthority;
  readonly issuers: CertificateAuthority[];
  readonly trusted: x509.X509Certificate[];
  readonly sequence: number;
  /** When the next automatic transition is due (ms); Infinity when none is pending. */
  readonly nextDue: number;
  /** The earliest activation time of a prepared intermediate (ms); Infinity when none. */
  readonly activationDue: number;
  /** Whether a previous intermediate waits for retirement. */
  readonly retiring: boolean;
}

const skiOf = (cert: x509.X509Certificate): string | undefined => {
  const ext = cert.getExtension('2.5.29.14');
  return ext === null ? undefined : new x509.SubjectKeyIdentifierExtension(ext.rawData).keyId.toLowerCase();
};
const akiOf = (cert: x509.X509Certificate): string | undefined => cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId?.toLowerCase();

class LiveCaHierarchy implements CaHierarchy {
  #state: LoadedState;
  #checkedAt: number;
  readonly #sealer: Sealer;
  readonly #clock: Clock;
  /** Decrypted issuing CAs by record id, so a reload does not re-import unchanged keys. */
  readonly #keys: Map<string, CertificateAuthority>;

  constructor(state: LoadedState, sealer: Sealer, clock: Clock, keys: Map<string, CertificateAuthority>) {
    this.#keys = keys;
    this.#state = state;
    this.#sealer = sealer;
    this.#clock = clock;
    this.#checkedAt = clock.now().getTime();
  }

  get roots() {
    return this.#state.roots;
  }
  get intermediate() {
    return this.#state.intermediate;
  }
  get trusted() {
    return this.#state.trusted;
  }
  get issuers() {
    return this.#state.issuers;
  }
  get sequence() {
    return this.#state.sequence;
  }

  chainOf(issuer: CertificateAuthority): x509.X509Certificate[] {
    const chain = [issuer.certificate];
    const cross = this.#state.crosses.find((c) => skiOf(c) === akiOf(issuer.certificate));
    if (cross) chain.push(cross);
    const root = this.#state.roots.find((r) => skiOf(r) === akiOf(chain[chain.length - 1]!));
    if (root) chain.push(root);
    return chain;
  }

  async refresh(stores: CaStores, transact: CaTransact, force = false): Promise<void> {
    const now = this.#clock.now().getTime();
    if (!force && now - this.#checkedAt < REFRESH_INTERVAL_MS && now < this.#state.nextDue) return;
    this.#checkedAt = now;
    if (now >= this.#state.nextDue && !(await transact((s) => advanceRotation(s, this.#clock)))) {
      // Nothing was due after all (a previous intermediate still has live leaves): look again later.
      const { activationDue, retiring } = this.#state;
      this.#state = { ...this.#state, nextDue: Math.min(activationDue, retiring ? now + RETIREMENT_CHECK_MS : Number.POSITIVE_INFINITY) };
    }
    const sequence = await stores.ca.bundleSequence();
    if (sequence !== this.#state.sequence || force) this.#state = await loadState(stores, this.#sealer, this.#clock, this.#keys);
  }
}

async function issuingCa(record: CaRecord, sealer: Sealer, cache: Map<string, CertificateAuthority>): Promise<CertificateAuthority> {
  const cached = cache.get(record.id);
  if (cached) return cached;
  if (!record.privateKey) throw new PkiError('pki.ca_unavailable', `the intermediate CA ${record.id} has no key on this server`);
  const keyPem = Buffer.from(sealer.decrypt(record.tenant, record.id, record.privateKey)).toString('utf8');
  const algorithm = record.algorithm as KeyAlgorithm;
  const ca: CertificateAuthority = { certificate: new x509.X509Certificate(record.certificatePem), privateKey: await importPrivateKeyPkcs8Pem(keyPem, algorithm), algorithm };
  cache.set(record.id, ca);
  return ca;
}

async function loadState(stores: Pick<CaStores, 'ca'>, sealer: Sealer, clock: Clock, cache: Map<string, CertificateAuthority>): Promise<LoadedState> {
  const records = await stores.ca.unretired();
  const sequence = await stores.ca.bundleSequence();
  const of = (role: CaRecord['role']) => records.filter((r) => r.role === role);
  const active = of('intermediate').filter((r) => r.status === 'active');
  const current = active[active.length - 1];
  if (!current) throw new PkiError('pki.ca_unavailable', 'no active intermediate CA');
  const previous = of('intermediate').filter((r) => r.status === 'previous');
  const issuers = [await issuingCa(current, sealer, cache)];
  // While a previous intermediate waits for its last leaf to expire, look again every minute.
  const retiring = previous.length > 0;
  for (const r of previous.reverse()) {
    // A previous intermediate without its key can still be trusted but no longer answer OCSP or CRL.
    if (r.privateKey) issuers.push(await issuingCa(r, sealer, cache));
  }
  let activationDue = Number.POSITIVE_INFINITY;
  for (const r of of('intermediate').filter((x) => x.status === 'prepared' && x.activateAfter !== null)) activationDue = Math.min(activationDue, Date.parse(r.activateAfter!));
  const nextDue = Math.min(activationDue, retiring ? clock.now().getTime() + RETIREMENT_CHECK_MS : Number.POSITIVE_INFINITY);
  const parse = (r: CaRecord) => new x509.X509Certificate(r.certificatePem);
  const roots = of('root').map(parse);
  const crosses = of('cross').map(parse);
  const intermediates = of('intermediate').map(parse);
  return { roots, crosses, intermediate: issuers[0]!, issuers, trusted: [...roots, ...crosses, ...intermediates], sequence, nextDue, activationDue, retiring };
}

/**
 * The automatic half of rotation (rotation.ts holds the operator's half): activates a prepared
 * intermediate whose `activateAfter` passed, retires previous intermediates whose last leaf has
 * expired, and retires an older root (with its cross-certificates) once a newer root is active
 * and no unretired intermediate hangs under it. Bumps the bundle sequence when anything changed.
 * Conditional transitions make replicas racing here harmless.
 */
export async function advanceRotation(s: CaStores, clock: Clock): Promise<boolean> {
  const now = clock.now();
  const records = await s.ca.unretired();
  let changed = false;
  const due = records.filter((r) => r.role === 'intermediate' && r.status === 'prepared' && r.activateAfter !== null && Date.parse(r.activateAfter) <= now.getTime());
  const next = due[due.length - 1];
  if (next) changed = (await activateIntermediate(s, next.id)) || changed;
  for (const r of await s.ca.unretired()) {
    if (r.role !== 'intermediate' || r.status !== 'previous') continue;
    const last = await s.certificates.lastExpiry(skiOf(new x509.X509Certificate(r.certificatePem)) ?? '');
    if (last === undefined || Date.parse(last) <= now.getTime()) changed = (await s.ca.transition(r.id, 'previous', 'retired')) || changed;
  }
  changed = (await retireSupersededRoots(s)) || changed;
  if (changed) await s.ca.bumpBundleSequence(now.toISOString());
  return changed;
}

/** Makes `id` (prepared) the signing intermediate and the one signing until now `previous`. */
export async function activateIntermediate(s: CaStores, id: string): Promise<boolean> {
  if (!(await s.ca.transition(id, 'prepared', 'active'))) return false;
  for (const r of await s.ca.active('intermediate')) if (r.id !== id) await s.ca.transition(r.id, 'active', 'previous');
  return true;
}

async function retireSupersededRoots(s: CaStores): Promise<boolean> {
  const records = await s.ca.unretired();
  const roots = records.filter((r) => r.role === 'root' && r.status === 'active');
  if (roots.length < 2) return false;
  const parse = (r: CaRecord) => new x509.X509Certificate(r.certificatePem);
  const newest = roots[roots.length - 1]!;
  // Only once an intermediate under the newest root signs: before that, the older root is the one in use.
  const newestKey = skiOf(parse(newest));
  const intermediates = records.filter((r) => r.role === 'intermediate');
  if (!intermediates.some((r) => r.status === 'active' && akiOf(parse(r)) === newestKey)) return false;
  let changed = false;
  for (const root of roots.slice(0, -1)) {
    const key = skiOf(parse(root));
    if (intermediates.some((r) => akiOf(parse(r)) === key)) continue;
    changed = (await s.ca.transition(root.id, 'active', 'retired')) || changed;
    for (const cross of records.filter((r) => r.role === 'cross' && akiOf(parse(r)) === key)) await s.ca.transition(cross.id, 'active', 'retired');
  }
  return changed;
}

/**
 * Loads the CA hierarchy, creating a self-signed root and an online intermediate on first start.
 * Both keys are stored only as barrier ciphertext; the root's can later be exported and removed
 * so that only the intermediate stays online.
 */
export async function ensureCaHierarchy(store: CaStore, sealer: Sealer, clock: Clock): Promise<CaHierarchy> {
  if ((await store.active('root')).length === 0) {
    const root = await createRootCa({ commonName: 'Rampart Root CA', clock });
    await store.insert(await caRecordFor(root, 'root', 'active', sealer, clock));
    const intermediate = await createIntermediateCa(root, { commonName: 'Rampart Intermediate CA', clock });
    await store.insert(await caRecordFor(intermediate, 'intermediate', 'active', sealer, clock));
    await store.bumpBundleSequence(clock.now().toISOString());
  }
  const cache = new Map<string, CertificateAuthority>();
  return new LiveCaHierarchy(await loadState({ ca: store }, sealer, clock, cache), sealer, clock, cache);
}

/** A CA record with its key sealed under the barrier (the record's id and tenant as associated data). */
export async function caRecordFor(
  ca: { certificate: x509.X509Certificate; privateKey?: CertificateAuthority['privateKey']; algorithm: string },
  role: CaRecord['role'],
  status: CaRecord['status'],
  sealer: Sealer,
  clock: Clock,
  activateAfter: string | null = null,
): Promise<CaRecord> {
  return sealedCaRecord({ ...ca, certificatePem: ca.certificate.toString('pem'), notAfter: ca.certificate.notAfter.toISOString() }, role, status, sealer, clock, activateAfter);
}

/** {@link caRecordFor} for a record whose certificate is not parsed (or, for a requested intermediate, is its CSR). */
export async function sealedCaRecord(
  ca: { certificatePem: string; notAfter: string; privateKey?: CertificateAuthority['privateKey']; algorithm: string },
  role: CaRecord['role'],
  status: CaRecord['status'],
  sealer: Sealer,
  clock: Clock,
  activateAfter: string | null = null,
): Promise<CaRecord> {
  const id = `ca_${randomId()}`;
  const keyPem = ca.privateKey === undefined ? undefined : await exportPrivateKeyPkcs8Pem(ca.privateKey);
  return {
    id,
    tenant: CA_TENANT,
    role,
    certificatePem: ca.certificatePem,
    privateKey: keyPem === undefined ? null : sealer.encrypt(CA_TENANT, id, Buffer.from(keyPem, 'utf8')),
    algorithm: ca.algorithm,
    status,
    notAfter: ca.notAfter,
    createdAt: clock.now().toISOString(),
    activateAfter,
  };
}
