import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Clock } from '../../src/core/clock.js';
import { chainPem, createRootCa, issueServerCertificate } from '../../src/pki/ca.js';
import { type CryptoKeyPair, exportPrivateKeyPkcs8Pem, generateKeyPair } from '../../src/pki/keys.js';

export interface TestCsr {
  readonly pem: string;
  readonly keys: CryptoKeyPair;
  readonly keyPem: string;
}

/**
 * A P-256 CSR as a workload would make it. `extensions` lets a test ask for things the CA must
 * ignore (cA=true, foreign SANs).
 */
export async function makeCsr(options: { subject?: string; extensions?: x509.Extension[] } = {}): Promise<TestCsr> {
  const keys = await generateKeyPair('ecdsa-p256');
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    ...(options.subject ? { name: options.subject } : {}),
    extensions: options.extensions ?? [],
  });
  return { pem: csr.toString('pem'), keys, keyPem: await exportPrivateKeyPkcs8Pem(keys.privateKey) };
}

/** The URI SANs, cA flag, key usage and EKU of a certificate, for asserting SVID rules. */
export function svidShape(pem: string) {
  const cert = new x509.X509Certificate(pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const crlDp = cert.getExtension(x509.CRLDistributionPointsExtension);
  const aia = cert.getExtension(x509.AuthorityInfoAccessExtension);
  return {
    cert,
    uris: san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [],
    otherNames: san?.names.items.filter((n) => n.type !== 'url').map((n) => `${n.type}:${n.value}`) ?? [],
    subject: cert.subject,
    ca: bc?.ca,
    bcCritical: bc?.critical,
    keyUsage: ku?.usages,
    keyUsageCritical: ku?.critical,
    eku: eku?.usages,
    crlUrls: crlDp?.distributionPoints.flatMap((dp) => dp.distributionPoint?.fullName?.map((n) => n.uniformResourceIdentifier) ?? []) ?? [],
    ocspUrls: aia?.ocsp.map((n) => n.value) ?? [],
  };
}

/**
 * A TLS identity for a throwaway test server on 127.0.0.1/localhost: its CA bundle, an
 * unrelated CA bundle (to check that clients refuse it), and the server's chain and key.
 */
export async function testServerTls(name: string, clock: Clock): Promise<{ caPem: string; otherCaPem: string; certPem: string; keyPem: string }> {
  const root = await createRootCa({ commonName: `${name} test root`, clock });
  const other = await createRootCa({ commonName: 'unrelated root', clock });
  const keys = await generateKeyPair('ecdsa-p256');
  const leaf = await issueServerCertificate(root, {
    publicKey: keys.publicKey,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    commonName: name,
    clock,
    ttlMs: 86_400_000,
  });
  return {
    caPem: chainPem(root.certificate),
    otherCaPem: chainPem(other.certificate),
    certPem: chainPem(leaf),
    keyPem: await exportPrivateKeyPkcs8Pem(keys.privateKey),
  };
}
