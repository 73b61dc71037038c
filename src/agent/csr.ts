import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../pki/keys.js';

/**
 * A fresh P-256 key and a CSR over it. The key is generated here, on the host, and only the CSR
 * (public key and signature) is ever sent: the private key never leaves the machine.
 */
export async function newKeyAndCsr(): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeyPair('ecdsa-p256');
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
  return { keyPem: await exportPrivateKeyPkcs8Pem(keys.privateKey), csrPem: csr.toString('pem') };
}
