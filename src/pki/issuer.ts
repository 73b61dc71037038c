import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { CertificateAuthority } from './ca.js';

/**
 * A stable name for an issuing CA in storage: the hex of its subject key identifier (RFC 5280
 * §4.2.1.2), which every certificate it issues carries as its AKI. Certificates, CRL numbers and
 * OCSP lookups are keyed by it, so a future second intermediate gets its own CRL sequence.
 */
export function issuerKeyId(ca: CertificateAuthority): string {
  const ski = ca.certificate.getExtension('2.5.29.14');
  if (ski === null) throw new RangeError('the issuing CA has no subject key identifier');
  return new x509.SubjectKeyIdentifierExtension(ski.rawData).keyId.toLowerCase();
}

/**
 * Serial numbers as stored and compared: lowercase hex of the DER INTEGER's content octets with
 * redundant leading zero octets removed (X.690 §8.3.2), colons (Vault's spelling) accepted.
 * Returns undefined for anything that is not a positive hex serial of at most 20 octets
 * (RFC 5280 §4.1.2.2).
 */
export function canonicalSerial(text: string): string | undefined {
  if (typeof text !== 'string') return undefined;
  let hex = text.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) return undefined;
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith('00') && Number.parseInt(hex.slice(2, 4), 16) < 0x80) hex = hex.slice(2);
  if (hex.length > 42 || /^0+$/.test(hex) || Number.parseInt(hex.slice(0, 2), 16) >= 0x80) return undefined;
  return hex;
}
