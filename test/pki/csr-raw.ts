/**
 * PKCS #10 requests written byte by byte (RFC 2986 §4, extensionRequest per RFC 2985 §5.4.2),
 * for the encodings no CSR library produces on request: a BER TRUE other than 0xff, two
 * extensionRequest attributes, an extension named twice, Microsoft's attribute OID, malformed
 * values. Each is properly self-signed with a fresh P-256 key, so that what the CA refuses is the
 * content, never the signature.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import * as der from '../../src/pki/der.js';

export const BASIC_CONSTRAINTS = '2.5.29.19';
export const KEY_USAGE = '2.5.29.15';
export const EXTENDED_KEY_USAGE = '2.5.29.37';
export const SUBJECT_ALT_NAME = '2.5.29.17';
export const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/** GeneralName tags (RFC 5280 §4.2.1.6, IMPLICIT). */
export const EMAIL = 0x81;
export const DNS = 0x82;
export const URI = 0x86;
export const IP = 0x87;

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? der.sequence(der.oid(oid), Buffer.from([0x01, 0x01, 0xff]), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));
}

/** The extensionRequest Attribute: SEQUENCE { type, SET { Extensions } }. */
export function extensionRequest(extensions: readonly Uint8Array[], oid = EXTENSION_REQUEST): Buffer {
  return der.sequence(der.oid(oid), der.tlv(0x31, der.sequenceOf(extensions)));
}

/** KeyUsage BIT STRING with the given bit numbers set (RFC 5280 §4.2.1.3: bit 0 is the MSB of the first octet). */
export function keyUsageBits(bits: readonly number[]): Buffer {
  const octets = [0, 0];
  for (const b of bits) octets[b >> 3] = (octets[b >> 3] ?? 0) | (0x80 >> (b & 7));
  const used = octets[1] === 0 ? octets.slice(0, 1) : octets;
  const last = used[used.length - 1] ?? 0;
  let unused = 0;
  while (unused < 7 && last !== 0 && (last & (1 << unused)) === 0) unused++;
  if (last === 0) unused = 0;
  return der.tlv(0x03, Uint8Array.from([unused, ...used]));
}

export const ekuValue = (oids: readonly string[]): Buffer => der.sequenceOf(oids.map((o) => der.oid(o)));

/** GeneralNames from [tag, value] pairs; an IP address value is its dotted text. */
export function sanValue(names: ReadonlyArray<readonly [number, string]>): Buffer {
  return der.sequenceOf(names.map(([tag, v]) => der.tlv(tag, tag === IP ? Uint8Array.from(v.split('.').map(Number)) : Buffer.from(v, 'latin1'))));
}

/** A self-signed PEM CSR with an empty subject and the given attributes (DER Attribute each). */
export function rawCsr(attributes: readonly Uint8Array[]): string {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const info = der.sequence(der.integer(0), der.sequence(), publicKey.export({ type: 'spki', format: 'der' }), der.tlv(0xa0, Buffer.concat(attributes)));
  const request = der.sequence(info, der.sequence(der.oid(ECDSA_WITH_SHA256)), der.bitString(sign('sha256', info, privateKey)));
  const b64 = request.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE REQUEST-----\n`;
}
