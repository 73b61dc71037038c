import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import { randomId } from '../core/ids.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from './ca.js';
import { exportPrivateKeyPkcs8Pem, importPrivateKeyPkcs8Pem, type KeyAlgorithm } from './keys.js';
import type { CaRecord, CaStore } from './store.js';
import type { Sealer } from '../core/sealer.js';

export interface CaHierarchy {
  readonly roots: readonly x509.X509Certificate[];
  /** The online issuing CA. */
  readonly intermediate: CertificateAuthority;
}

/** Records are owned by the operator tenant; per-tenant trust domains share the hierarchy. */
const CA_TENANT = 'default';

/**
 * Loads the CA hierarchy, creating a self-signed root and an online intermediate on first start.
 * Both keys are stored only as barrier ciphertext; the root's can later be exported and removed
 * so that only the intermediate stays online.
 */
export async function ensureCaHierarchy(store: CaStore, sealer: Sealer, clock: Clock): Promise<CaHierarchy> {
  let roots = await store.active('root');
  let intermediates = await store.active('intermediate');
  if (roots.length === 0) {
    const root = await createRootCa({ commonName: 'Rampart Root CA', clock });
    const rootRecord = await recordFor(root, 'root', sealer, clock);
    await store.insert(rootRecord);
    const intermediate = await createIntermediateCa(root, { commonName: 'Rampart Intermediate CA', clock });
    await store.insert(await recordFor(intermediate, 'intermediate', sealer, clock));
    roots = await store.active('root');
    intermediates = await store.active('intermediate');
  }
  const current = intermediates[0];
  if (!current?.privateKey) throw new PkiError('pki.ca_unavailable', 'no online intermediate CA with a key');
  const keyPem = Buffer.from(sealer.decrypt(current.tenant, current.id, current.privateKey)).toString('utf8');
  const algorithm = current.algorithm as KeyAlgorithm;
  return {
    roots: roots.map((r) => new x509.X509Certificate(r.certificatePem)),
    intermediate: {
      certificate: new x509.X509Certificate(current.certificatePem),
      privateKey: await importPrivateKeyPkcs8Pem(keyPem, algorithm),
      algorithm,
    },
  };
}

async function recordFor(ca: CertificateAuthority, role: CaRecord['role'], sealer: Sealer, clock: Clock): Promise<CaRecord> {
  const id = `ca_${randomId()}`;
  const keyPem = await exportPrivateKeyPkcs8Pem(ca.privateKey);
  return {
    id,
    tenant: CA_TENANT,
    role,
    certificatePem: ca.certificate.toString('pem'),
    privateKey: sealer.encrypt(CA_TENANT, id, Buffer.from(keyPem, 'utf8')),
    algorithm: ca.algorithm,
    status: 'active',
    notAfter: ca.certificate.notAfter.toISOString(),
    createdAt: clock.now().toISOString(),
  };
}
