import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { CertificateAuthority } from './ca.js';

/**
 * A stable name for an issuing CA in storage: the hex of its subject key identifier (RFC 5280
 * §4.2.1.2), which every certificate it issues carries as its AKI. Certificates, CRL numbers and
 * OCSP lookups are keyed by it, so a future second intermediate gets its own CRL sequence.
 */
export function issuerKeyId(ca: CertificateAuthority): string {
  let id = keyIds.get(ca.certificate);
  if (id === undefined) {
    const ski = ca.certificate.getExtension('2.5.29.14');
    if (ski === null) throw new RangeError('the issuing CA has no subject key identifier');
    id = new x509.SubjectKeyIdentifierExtension(ski.rawData).keyId.toLowerCase();
    keyIds.set(ca.certificate, id);
  }
  return id;
}

/** Computed once per CA certificate: every issuance and OCSP lookup asks. */
const keyIds = new WeakMap<x509.X509Certificate, string>();

/**
 * Serial numbers as stored and compared: the lowercase hex of the DER INTEGER's content octets
 * (X.690 §8.3), i.e. the positive value's big-endian octets without redundant leading zeros,
 * with a 00 octet in front when the first octet's high bit is set. Input is read as an unsigned
 * magnitude, in any case, with or without leading zeros and with Vault's colons, because that is
 * how tools print serials (`openssl x509 -serial` and @peculiar/x509 drop the 00 octet).
 * Returns undefined for anything that is not a positive hex serial of at most 20 content octets
 * (RFC 5280 §4.1.2.2).
 */
export function canonicalSerial(text: string): string | undefined {
  if (typeof text !== 'string') return undefined;
  let hex = text.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) return undefined;
  hex = hex.replace(/^0+/, '');
  if (hex === '') return undefined;
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 1), 16) >= 8) hex = `00${hex}`;
  return hex.length > 40 ? undefined : hex;
}
