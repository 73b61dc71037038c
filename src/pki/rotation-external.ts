/**
 * Rotation with a root that is not on the server (issue 3, "an imported external root for the
 * intermediate"): the server makes the new intermediate's key and CSR, the root's holder signs it
 * wherever the root lives (`openssl x509 -req`, an HSM, another CA), and the signed certificate
 * comes back to be published as `prepared`, then activated as any rotation (rotation.ts). When
 * the signing root is not one of ours yet, its certificate comes along and becomes a trusted
 * root without a key here.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import type { Sealer } from '../core/sealer.js';
import { type CaStores, caRecordFor, sealedCaRecord } from './hierarchy.js';
import { DEFAULT_KEY_ALGORITHM, generateKeyPair, keyAlgorithmOf, signingAlgorithmFor } from './keys.js';
import { refuseWhilePending } from './rotation.js';
import type { CaRecord } from './store.js';

export interface IntermediateRequest {
  readonly record: CaRecord;
  /** PEM PKCS #10 request for the new intermediate's key. */
  readonly csrPem: string;
}

/**
 * Creates the next intermediate's key (sealed, like every CA key) and its CSR.
 *
 * @throws PkiError `pki.rotation_in_progress` while another intermediate is requested or prepared
 */
export async function requestIntermediate(s: CaStores, sealer: Sealer, clock: Clock): Promise<IntermediateRequest> {
  await refuseWhilePending(s);
  const keys = await generateKeyPair(DEFAULT_KEY_ALGORITHM);
  const name = `CN=Rampart Intermediate CA ${clock.now().toISOString().slice(0, 19).replace('T', ' ')}`;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm: signingAlgorithmFor(DEFAULT_KEY_ALGORITHM) });
  const csrPem = csr.toString('pem');
  // Until it is signed, the record holds the CSR where the certificate will go.
  const record = await sealedCaRecord({ certificatePem: csrPem, notAfter: clock.now().toISOString(), privateKey: keys.privateKey, algorithm: DEFAULT_KEY_ALGORITHM }, 'intermediate', 'requested', sealer, clock);
  await s.ca.insert(record);
  return { record, csrPem };
}

/**
 * The machine that signed it may run a little ahead of ours and set notBefore to its own "now";
 * the propagation delay (minutes) passes before the intermediate signs anything anyway.
 */
const SIGNER_CLOCK_SKEW_MS = 300_000;

const invalid = (reason: string, cause?: unknown) => new PkiError('pki.ca_certificate_invalid', `the signed intermediate is not acceptable: ${reason}`, cause === undefined ? {} : { cause });

export interface InstallSignedOptions {
  readonly certificatePem: string;
  /** The signing root's certificate, when it is not a root of this server yet. */
  readonly rootPem?: string;
  readonly propagationDelayMs: number;
}

/**
 * Publishes the signed intermediate as `prepared`. It must hold the requested key, be a CA that
 * may sign certificates and CRLs (RFC 5280 §4.2.1.3, §4.2.1.9), be valid now, and be signed by an
 * active root of this server or by `rootPem`, a self-signed CA certificate, which is then trusted.
 *
 * @throws PkiError `pki.ca_certificate_invalid`, `pki.rotation_not_prepared` (no requested key)
 */
export async function installSignedIntermediate(s: CaStores, sealer: Sealer, clock: Clock, options: InstallSignedOptions): Promise<CaRecord> {
  let cert: x509.X509Certificate;
  let root: x509.X509Certificate | undefined;
  try {
    cert = new x509.X509Certificate(options.certificatePem);
    root = options.rootPem === undefined ? undefined : new x509.X509Certificate(options.rootPem);
  } catch (err) {
    throw invalid('not a PEM certificate', err);
  }
  const spki = Buffer.from(cert.publicKey.rawData);
  const requested = (await s.ca.withStatus('requested')).find((r) => Buffer.from(new x509.Pkcs10CertificateRequest(r.certificatePem).publicKey.rawData).equals(spki));
  if (!requested) throw new PkiError('pki.rotation_not_prepared', 'no requested intermediate holds this key; run rampart ca intermediate csr first');
  const isSigningCa = (c: x509.X509Certificate) =>
    c.getExtension(x509.BasicConstraintsExtension)?.ca === true && ((c.getExtension(x509.KeyUsagesExtension)?.usages ?? 0) & x509.KeyUsageFlags.keyCertSign) !== 0;
  if (!isSigningCa(cert) || ((cert.getExtension(x509.KeyUsagesExtension)?.usages ?? 0) & x509.KeyUsageFlags.cRLSign) === 0) {
    throw invalid('it must be a CA (basicConstraints cA) with keyCertSign and cRLSign');
  }
  if (cert.getExtension(x509.SubjectKeyIdentifierExtension) === null) throw invalid('it has no subject key identifier');
  const now = clock.now();
  if (now.getTime() + SIGNER_CLOCK_SKEW_MS < cert.notBefore.getTime() || now >= cert.notAfter) {
    throw invalid(`it is not valid now (${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`);
  }

  const roots = (await s.ca.active('root')).map((r) => new x509.X509Certificate(r.certificatePem));
  const candidates = root ? [root, ...roots] : roots;
  let signer: x509.X509Certificate | undefined;
  for (const candidate of candidates) {
    if (candidate.subject === cert.issuer && (await cert.verify({ publicKey: candidate.publicKey, signatureOnly: true }).catch(() => false))) {
      signer = candidate;
      break;
    }
  }
  if (!signer) throw invalid('it is not signed by an active root of this server, nor by the root certificate sent with it');
  if (signer === root && !roots.some((r) => Buffer.from(r.rawData).equals(Buffer.from(root.rawData)))) {
    if (!(await root.isSelfSigned()) || !isSigningCa(root)) throw invalid('the root sent with it is not a self-signed CA certificate');
    // Trusted without a key here: this server can never sign with it.
    await s.ca.insert(await caRecordFor({ certificate: root, algorithm: keyAlgorithmOf(root.publicKey.algorithm) ?? 'external' }, 'root', 'active', sealer, clock));
  }
  // Never before it is valid: an intermediate cannot issue outside its own validity.
  const activateAfter = new Date(Math.max(now.getTime() + options.propagationDelayMs, cert.notBefore.getTime())).toISOString();
  if (!(await s.ca.installCertificate(requested.id, `${cert.toString('pem')}\n`, cert.notAfter.toISOString(), activateAfter))) {
    throw new PkiError('pki.rotation_not_prepared', 'the requested intermediate was installed concurrently');
  }
  await s.ca.bumpBundleSequence(now.toISOString());
  return { ...requested, certificatePem: cert.toString('pem'), status: 'prepared', activateAfter };
}
