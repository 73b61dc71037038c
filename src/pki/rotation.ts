/**
 * CA rotation without downtime, the operator's half (hierarchy.ts's `advanceRotation` makes the
 * timed transitions). Relying parties refresh their trust bundle on their own schedule, so a new
 * CA must be in the bundle before anything it signs is presented:
 *
 *  1. prepare: a new intermediate is created and published as `prepared`; it signs nothing.
 *  2. activate, after the propagation delay or on an explicit call: it becomes `active` and signs;
 *     the one it replaces becomes `previous`, still in the bundle, its CRL and OCSP still answering.
 *  3. retire: once the previous intermediate's last leaf has expired it leaves the bundle.
 *
 * A root rotates the same way through cross-signing: a new root, a cross-certificate of it signed
 * by the old root, and a prepared intermediate under the new root. Leaves of that intermediate
 * are served with the cross-certificate, so peers that trust only the old root still validate
 * them; the old root leaves the bundle once no intermediate under it remains.
 */
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import type { Sealer } from '../core/sealer.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa, crossCertify } from './ca.js';
import { activateIntermediate, type CaStores, caRecordFor } from './hierarchy.js';
import { importPrivateKeyPkcs8Pem, type KeyAlgorithm } from './keys.js';
import * as x509 from '@peculiar/x509';
import type { CaRecord } from './store.js';

/**
 * Twice the bundle's refresh hint (see bundle.ts): a relying party that polls as told has fetched
 * the bundle with the new CA at least once before the CA signs.
 */
export const DEFAULT_PROPAGATION_DELAY_MS = 600_000;

export type RotationTarget = 'intermediate' | 'root';

export interface PrepareRotationOptions {
  readonly target: RotationTarget;
  /** How long the new intermediate is published before it signs; 0 activates it on the next refresh. */
  readonly propagationDelayMs: number;
}

export interface PreparedRotation {
  /** The record ids created: the new intermediate, and for a root rotation the root and cross-certificate. */
  readonly intermediate: CaRecord;
  readonly root?: CaRecord;
  readonly cross?: CaRecord;
}

/** A UTC timestamp to tell generations apart in certificate names (CN at most 64 characters). */
const generation = (clock: Clock): string => clock.now().toISOString().slice(0, 19).replace('T', ' ');

async function onlineCa(record: CaRecord, sealer: Sealer): Promise<CertificateAuthority> {
  if (!record.privateKey) {
    throw new PkiError('pki.root_offline', 'the root key is not on this server; import it (rampart ca root import) or have the new intermediate signed offline (rampart ca intermediate csr)');
  }
  const algorithm = record.algorithm as KeyAlgorithm;
  const pem = Buffer.from(sealer.decrypt(record.tenant, record.id, record.privateKey)).toString('utf8');
  return { certificate: new x509.X509Certificate(record.certificatePem), privateKey: await importPrivateKeyPkcs8Pem(pem, algorithm), algorithm };
}

/** The newest active root; every deployment has one. */
export async function newestRoot(s: CaStores): Promise<CaRecord> {
  const [root] = await s.ca.active('root');
  if (!root) throw new PkiError('pki.ca_unavailable', 'no active root CA');
  return root;
}

/**
 * One rotation at a time: refuses while an intermediate is prepared (published, not signing) or
 * requested (its CSR out for signing).
 *
 * @throws PkiError `pki.rotation_in_progress`
 */
export async function refuseWhilePending(s: CaStores): Promise<void> {
  const prepared = (await s.ca.withStatus('prepared')).find((r) => r.role === 'intermediate');
  if (prepared) {
    throw new PkiError('pki.rotation_in_progress', `intermediate ${prepared.id} is already prepared; activate it (rampart ca activate) or wait for ${prepared.activateAfter ?? 'its activation'}`);
  }
  const [requested] = await s.ca.withStatus('requested');
  if (requested) throw new PkiError('pki.rotation_in_progress', `intermediate ${requested.id} awaits its signed certificate (rampart ca intermediate set-signed)`);
}

/**
 * Step 1: publishes a new intermediate (under the newest root, or under a new cross-signed root)
 * without letting it sign. Run in the transaction that writes its audit event.
 *
 * @throws PkiError `pki.rotation_in_progress` when an intermediate is already prepared,
 *   `pki.root_offline` when the root key that must sign is not on the server
 */
export async function prepareRotation(s: CaStores, sealer: Sealer, clock: Clock, options: PrepareRotationOptions): Promise<PreparedRotation> {
  await refuseWhilePending(s);
  const oldRoot = await onlineCa(await newestRoot(s), sealer);
  const activateAfter = new Date(clock.now().getTime() + options.propagationDelayMs).toISOString();
  const name = generation(clock);
  let parent = oldRoot;
  let root: CaRecord | undefined;
  let cross: CaRecord | undefined;
  if (options.target === 'root') {
    parent = await createRootCa({ commonName: `Rampart Root CA ${name}`, clock, algorithm: oldRoot.algorithm });
    root = await caRecordFor(parent, 'root', 'active', sealer, clock);
    cross = await caRecordFor({ certificate: await crossCertify(oldRoot, parent.certificate, clock), algorithm: parent.algorithm }, 'cross', 'active', sealer, clock);
    await s.ca.insert(root);
    await s.ca.insert(cross);
  }
  const next = await createIntermediateCa(parent, { commonName: `Rampart Intermediate CA ${name}`, clock, algorithm: parent.algorithm });
  const intermediate = await caRecordFor(next, 'intermediate', 'prepared', sealer, clock, activateAfter);
  await s.ca.insert(intermediate);
  await s.ca.bumpBundleSequence(clock.now().toISOString());
  return { intermediate, ...(root ? { root } : {}), ...(cross ? { cross } : {}) };
}

/**
 * Step 2 on the operator's word rather than the clock: the prepared intermediate signs from now on.
 *
 * @throws PkiError `pki.rotation_not_prepared` when no intermediate is prepared
 */
export async function activatePrepared(s: CaStores, clock: Clock): Promise<CaRecord> {
  const prepared = (await s.ca.unretired()).filter((r) => r.role === 'intermediate' && r.status === 'prepared');
  const next = prepared[prepared.length - 1];
  if (!next || !(await activateIntermediate(s, next.id))) throw new PkiError('pki.rotation_not_prepared', 'no intermediate is prepared; run rampart ca rotate first');
  await s.ca.bumpBundleSequence(clock.now().toISOString());
  return next;
}
