/**
 * Taking the root key offline (issue 3, "The CA"): export it encrypted, remove it from the
 * server so only the intermediate is online, and bring it back for the rare operation that needs
 * it (a rotation). The export is PKCS #8 EncryptedPrivateKeyInfo (RFC 5958 §3) with PBES2 and
 * AES-256-CBC, written by Node's own `KeyObject.export`, which `openssl pkey` reads.
 */
import { createPrivateKey, createPublicKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { PkiError } from '../core/errors.js';
import type { Sealer } from '../core/sealer.js';
import type { CaStores } from './hierarchy.js';
import { newestRoot } from './rotation.js';
import type { CaRecord } from './store.js';

/** Shorter passphrases make an offline guess of the exported key cheap (PBKDF2 is the only barrier). */
export const MIN_PASSPHRASE_LENGTH = 16;

export interface ExportedRootKey {
  readonly root: CaRecord;
  /** `-----BEGIN ENCRYPTED PRIVATE KEY-----` PEM. */
  readonly encryptedKeyPem: string;
}

function checkPassphrase(passphrase: string): void {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new PkiError('pki.root_key_invalid', `the passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
}

/**
 * The newest root's key, encrypted under `passphrase`.
 *
 * @throws PkiError `pki.root_offline` when the key is not on the server, `pki.root_key_invalid`
 *   for a passphrase under {@link MIN_PASSPHRASE_LENGTH} characters
 */
export async function exportRootKey(s: CaStores, sealer: Sealer, passphrase: string): Promise<ExportedRootKey> {
  checkPassphrase(passphrase);
  const root = await newestRoot(s);
  if (!root.privateKey) throw new PkiError('pki.root_offline', 'the root key was already removed from this server');
  const pem = Buffer.from(sealer.decrypt(root.tenant, root.id, root.privateKey)).toString('utf8');
  const encryptedKeyPem = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase });
  return { root, encryptedKeyPem: encryptedKeyPem.toString() };
}

/**
 * Deletes the key of root `rootId` from the server (the record and certificate stay: the root
 * remains trusted). Naming the root is the confirmation that its export was kept.
 *
 * @throws PkiError `pki.root_offline` when that root has no key here, `pki.ca_unavailable` when
 *   `rootId` is not an active root
 */
export async function removeRootKey(s: CaStores, rootId: string): Promise<CaRecord> {
  const root = await s.ca.get(rootId);
  if (!root || root.role !== 'root' || root.status !== 'active') throw new PkiError('pki.ca_unavailable', `${rootId} is not an active root CA`);
  if (!root.privateKey) throw new PkiError('pki.root_offline', 'the root key was already removed from this server');
  await s.ca.setPrivateKey(root.id, null);
  return root;
}

const spkiOf = (key: KeyObject): Buffer => createPublicKey(key).export({ type: 'spki', format: 'der' });

/**
 * Decrypts an exported root key and puts it back under the barrier, on the active root whose
 * certificate holds its public key.
 *
 * @throws PkiError `pki.root_key_invalid` when it does not decrypt or belongs to no active root
 */
export async function importRootKey(s: CaStores, sealer: Sealer, encryptedKeyPem: string, passphrase: string): Promise<CaRecord> {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: encryptedKeyPem, format: 'pem', passphrase });
  } catch (err) {
    // The cause names OpenSSL's reason (bad decrypt, wrong format); it never holds the passphrase.
    throw new PkiError('pki.root_key_invalid', 'the key does not decrypt with this passphrase, or is not a PEM private key', { cause: err });
  }
  const spki = spkiOf(key);
  const roots = await s.ca.active('root');
  const root = roots.find((r) => {
    const certSpki = Buffer.from(new x509.X509Certificate(r.certificatePem).publicKey.rawData);
    return certSpki.length === spki.length && timingSafeEqual(certSpki, spki);
  });
  if (!root) throw new PkiError('pki.root_key_invalid', 'the key belongs to no active root CA of this server');
  const pkcs8 = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  await s.ca.setPrivateKey(root.id, sealer.encrypt(root.tenant, root.id, Buffer.from(pkcs8, 'utf8')));
  return root;
}
