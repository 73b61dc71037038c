/**
 * The X.509-SVID leaf written directly as DER and signed with Node's `crypto.sign`. Building the
 * same certificate through @peculiar/x509's object model took about 3 ms, most of it object
 * building and re-serializing, against 0.03 ms for the ECDSA signature; issuance is the hot path
 * of every workload's rotation, so the leaf is written here field by field (RFC 5280 §4.1) with
 * the linear writer of der.ts. Every field is what `issueSvid` always produced; the SVID tests
 * and `openssl verify -x509_strict` hold it to that.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { CertificateAuthority } from './ca.js';
import * as der from './der.js';
import { childrenOf, contentBytes, readTlv } from './der-reader.js';
import { signatureAlgorithmIdentifier, signWith } from './keys.js';

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocsp: '1.3.6.1.5.5.7.48.1',
} as const;

/** RFC 5280 §4.1 Extension: `critical` is DEFAULT FALSE, so DER leaves it out when false (X.690 §11.5). */
function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? der.sequence(der.oid(oid), Buffer.from([0x01, 0x01, 0xff]), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));
}

/** GeneralName CHOICE tags (RFC 5280 §4.2.1.6), IMPLICIT: dNSName [2], uniformResourceIdentifier [6]. */
const dnsName = (name: string): Buffer => der.tlv(0x82, Buffer.from(name, 'ascii'));
const uriName = (uri: string): Buffer => der.tlv(0x86, Buffer.from(uri, 'ascii'));

/**
 * The constant leaf extensions (see `leafExtensions` in ca.ts for why these): basicConstraints
 * critical with cA absent (false), keyUsage critical digitalSignature (BIT STRING 0x80 with 7
 * unused bits), EKU serverAuth + clientAuth.
 */
const LEAF_CONSTRAINTS = Buffer.concat([
  extension(OID.basicConstraints, true, der.sequence()),
  extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80])),
  extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth), der.oid(OID.clientAuth))),
]);

/** What every leaf of one issuer repeats, computed once per CA. */
interface IssuerFields {
  readonly name: Buffer;
  readonly signatureAlgorithm: Buffer;
  readonly authorityKeyIdentifier: Buffer;
}

const issuerFields = new WeakMap<CertificateAuthority, IssuerFields>();

/**
 * RFC 5280 §4.2.1.1: the AKI key identifier is the issuer's SKI, copied rather than recomputed
 * so that path building matches even for an imported CA whose SKI was derived another way.
 */
function fieldsOf(issuer: CertificateAuthority): IssuerFields {
  let fields = issuerFields.get(issuer);
  if (fields === undefined) {
    const ski = issuer.certificate.getExtension('2.5.29.14');
    const keyId = ski === null ? undefined : new x509.SubjectKeyIdentifierExtension(ski.rawData).keyId;
    if (keyId === undefined) throw new RangeError('the issuing CA has no subject key identifier');
    fields = {
      // The issuer's subject as encoded in its certificate, byte for byte (RFC 5280 §7.1).
      name: Buffer.from(issuer.certificate.subjectName.toArrayBuffer()),
      signatureAlgorithm: signatureAlgorithmIdentifier(issuer.algorithm),
      authorityKeyIdentifier: extension(OID.authorityKeyIdentifier, false, der.sequence(der.tlv(0x80, Buffer.from(keyId, 'hex')))),
    };
    issuerFields.set(issuer, fields);
  }
  return fields;
}

/**
 * RFC 5280 §4.2.1.2 method (1): the SHA-1 of the subjectPublicKey BIT STRING's value (without
 * its unused-bits octet).
 */
function subjectKeyIdentifier(spki: Uint8Array): Buffer {
  const [, bits] = childrenOf(spki, readTlv(spki, 0));
  if (bits === undefined || bits.tag !== 0x03) throw new RangeError('not a SubjectPublicKeyInfo');
  const keyId = createHash('sha1').update(contentBytes(spki, bits).subarray(1)).digest();
  return extension(OID.subjectKeyIdentifier, false, der.octetString(keyId));
}

export interface SvidFields {
  /** Canonical serial hex (see `canonicalSerial`): the INTEGER's content octets. */
  readonly serialNumber: string;
  /** DER Name; an empty SEQUENCE when the SVID has no subject. */
  readonly subject: Uint8Array;
  /** DER SubjectPublicKeyInfo, as the CSR carried it. */
  readonly spki: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  readonly crlDistributionUrl?: string;
  readonly ocspUrl?: string;
}

/**
 * The DER of a signed X.509 v3 SVID. Callers validate every input first (`issueSvid` does); this
 * only writes. The SAN extension is critical exactly when the subject is empty (RFC 5280
 * §4.1.2.6, X509-SVID §3.1).
 */
export function writeSvid(issuer: CertificateAuthority, f: SvidFields): Buffer {
  const { name, signatureAlgorithm, authorityKeyIdentifier } = fieldsOf(issuer);
  const emptySubject = f.subject.length === 2;
  const extensions: Uint8Array[] = [
    LEAF_CONSTRAINTS,
    extension(OID.subjectAltName, emptySubject, der.sequence(uriName(f.spiffeId), ...f.dnsNames.map(dnsName))),
  ];
  if (f.crlDistributionUrl !== undefined) {
    // DistributionPoint { distributionPoint [0] { fullName [0] { URI } } } (§4.2.1.13)
    extensions.push(extension(OID.crlDistributionPoints, false, der.sequence(der.sequence(der.tlv(0xa0, der.tlv(0xa0, uriName(f.crlDistributionUrl)))))));
  }
  if (f.ocspUrl !== undefined) {
    extensions.push(extension(OID.authorityInfoAccess, false, der.sequence(der.sequence(der.oid(OID.ocsp), uriName(f.ocspUrl)))));
  }
  extensions.push(subjectKeyIdentifier(f.spki), authorityKeyIdentifier);
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3 (§4.1.2.1)
    der.integerFromHex(f.serialNumber),
    signatureAlgorithm,
    name,
    der.sequence(der.time(f.notBefore), der.time(f.notAfter)),
    f.subject,
    f.spki,
    der.explicit(3, der.sequence(...extensions)),
  );
  return der.sequence(tbs, signatureAlgorithm, der.bitString(signWith(issuer.algorithm, issuer.privateKey, tbs)));
}
