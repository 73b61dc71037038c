import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
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
