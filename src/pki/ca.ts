/**
 * The certificate authority hierarchy: an offline-style root, intermediates under it, and the leaf
 * certificates they issue (TLS server certificates for the control plane itself and X.509-SVIDs
 * for workloads). Pure domain code: keys and certificates in, certificates out; time comes only
 * from the injected {@link Clock}.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { constants, createPublicKey, type KeyObject, verify, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import {
  type CryptoKey,
  DEFAULT_KEY_ALGORITHM,
  generateKeyPair,
  type KeyAlgorithm,
  KEY_ALGORITHMS,
  keyAlgorithmOf,
  keyAlgorithmOfKeyObject,
  signingAlgorithmFor,
} from './keys.js';
import { childrenOf, contentBytes, elementBytes, oidText, readTlv, type Tlv } from './der-reader.js';
import { canonicalSerial } from './issuer.js';
import { parseSpiffeId, type SpiffeId } from './spiffe.js';
import { writeSvid } from './tbs-svid.js';

export interface CertificateAuthority {
  readonly certificate: x509.X509Certificate;
  readonly privateKey: CryptoKey;
  readonly algorithm: KeyAlgorithm;
}

const DAY_MS = 86_400_000;

/**
 * Peers whose clocks run behind ours would reject a certificate issued "now" as not yet valid
 * for the first moments of its life; workloads rotate SVIDs often, so that window would be hit
 * constantly. Sixty seconds covers ordinary NTP drift without meaningfully lengthening validity.
 */
const CLOCK_SKEW_ALLOWANCE_MS = 60_000;

/** RFC 5280 Appendix A.1, `ub-common-name`. */
const MAX_COMMON_NAME_LENGTH = 64;

const MIN_TTL_MS = 1_000;

/**
 * RFC 5280 §4.1.2.2: a positive, non-zero integer of at most 20 octets, unique per issuer; CA/B
 * Forum BR §7.1 asks for at least 64 bits from a CSPRNG. Sixteen random octets with the top bit
 * cleared (127 bits) can never encode as a negative DER INTEGER.
 */
function randomSerialNumber(): string {
  const bytes = new Uint8Array(16);
  do {
    webcrypto.getRandomValues(bytes);
    bytes[0] = (bytes[0] ?? 0) & 0x7f;
  } while (bytes.every((b) => b === 0));
  return Buffer.from(bytes).toString('hex');
}

function commonNameSubject(commonName: string): x509.JsonName {
  if (commonName.length === 0 || commonName.length > MAX_COMMON_NAME_LENGTH) {
    throw new RangeError(`commonName must be 1 to ${MAX_COMMON_NAME_LENGTH} characters`);
  }
  return [{ CN: [commonName] }];
}

function checkPositive(name: string, value: number, min = Number.MIN_VALUE): void {
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`${name} must be a finite number >= ${min}, got ${value}`);
  }
}

/**
 * RFC 5280 §4.2.1.6: dNSName is an IA5String in the preferred name syntax of RFC 1034 §3.5;
 * underscores are tolerated for internal service names and a leading `*.` label for wildcards.
 */
const DNS_NAME = /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;

function checkDnsName(name: string): void {
  if (name.length > 253 || !DNS_NAME.test(name)) throw new RangeError(`Not a valid DNS name: ${JSON.stringify(name)}`);
}

/**
 * @peculiar/x509 encodes IPv6 text by splitting on `:` and parsing hex, so a dotted IPv4 tail or a
 * zone index would be encoded silently wrong; only plain dotted-quad and plain hex IPv6 pass.
 */
function checkIpAddress(ip: string): void {
  const version = isIP(ip);
  if (version === 4 || (version === 6 && !/[.%]/.test(ip))) return;
  throw new RangeError(`Not a valid IP address (IPv4 dotted quad or IPv6 hex): ${JSON.stringify(ip)}`);
}

function checkDistributionUrl(name: string, url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new RangeError(`${name} is not a URL: ${JSON.stringify(url)}`);
  }
  if (protocol !== 'http:' && protocol !== 'https:') throw new RangeError(`${name} must be an http(s) URL`);
}

function checkLeafPublicKey(publicKey: CryptoKey): void {
  if (publicKey.type !== 'public') throw new TypeError('publicKey must be a public key');
  if (keyAlgorithmOf(publicKey.algorithm) === undefined) {
    throw new RangeError(`Unsupported leaf key algorithm ${publicKey.algorithm.name}`);
  }
}

interface ValidityWindow {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * RFC 5280 §6.1.3 (a)(2) checks every certificate in the path against the validation time, so a
 * child outliving its issuer would just fail validation early; clamping makes the stated
 * validity honest. A CA outside its own validity cannot issue at all.
 */
function windowUnder(issuer: CertificateAuthority, clock: Clock, lifetimeMs: number): ValidityWindow {
  const now = clock.now();
  const { notBefore: issuerNotBefore, notAfter: issuerNotAfter } = issuer.certificate;
  if (now < issuerNotBefore || now >= issuerNotAfter) {
    throw new PkiError(
      'pki.ca_unavailable',
      `The issuing CA "${issuer.certificate.subject}" is not valid at ${now.toISOString()} ` +
        `(valid ${issuerNotBefore.toISOString()} to ${issuerNotAfter.toISOString()})`,
    );
  }
  const notBefore = new Date(Math.max(now.getTime() - CLOCK_SKEW_ALLOWANCE_MS, issuerNotBefore.getTime()));
  const notAfter = new Date(Math.min(now.getTime() + lifetimeMs, issuerNotAfter.getTime()));
  return { notBefore, notAfter };
}

/**
 * RFC 5280 §4.2.1.1: the AKI key identifier is the issuer's SKI, copied rather than recomputed so
 * that path building matches even for an imported CA whose SKI was derived some other way.
 */
async function authorityKeyIdentifier(issuer: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = issuer.getExtension('2.5.29.14');
  if (ski !== null) return new x509.AuthorityKeyIdentifierExtension(new x509.SubjectKeyIdentifierExtension(ski.rawData).keyId);
  return x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey);
}

interface SignParams {
  readonly subject?: x509.JsonName;
  readonly publicKey: CryptoKey;
  readonly window: ValidityWindow;
  readonly extensions: x509.Extension[];
}

async function signUnder(issuer: CertificateAuthority, params: SignParams): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    // The issuer's subject is passed as parsed, so the DER bytes match exactly (RFC 5280 §7.1).
    issuer: issuer.certificate.subjectName,
    ...(params.subject === undefined ? {} : { subject: params.subject }),
    notBefore: params.window.notBefore,
    notAfter: params.window.notAfter,
    publicKey: params.publicKey,
    signingKey: issuer.privateKey,
    signingAlgorithm: signingAlgorithmFor(issuer.algorithm),
    extensions: [
      ...params.extensions,
      await x509.SubjectKeyIdentifierExtension.create(params.publicKey),
      await authorityKeyIdentifier(issuer.certificate),
    ],
  });
}

/** RFC 5280 §4.2.1.3 and §4.2.1.9: a CA's key signs certificates and CRLs and nothing else. */
function caExtensions(pathLength?: number): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
}

/**
 * Leaves: `cA` false (RFC 5280 §4.2.1.9; X509-SVID §4.1), key usage critical `digitalSignature`
 * only (RFC 5280 §4.2.1.3; X509-SVID §4.3), and EKU serverAuth + clientAuth (RFC 5280
 * §4.2.1.12; X509-SVID §4.4) because every workload is both a TLS client and a TLS server.
 *
 * `keyEncipherment` is left out even for RSA keys, which X509-SVID §4.3 allows: it only serves
 * TLS 1.2 RSA key transport, which has no forward secrecy and which TLS 1.3 removed. Without
 * it, a stolen leaf key cannot decrypt recorded traffic.
 */
function leafExtensions(): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
  ];
}

export interface CreateRootCaOptions {
  readonly commonName: string;
  readonly clock: Clock;
  readonly validityDays?: number;
  readonly algorithm?: KeyAlgorithm;
}

/**
 * A self-signed root (RFC 5280 §3.2). No pathLenConstraint, so intermediates may be chained as
 * deep as operations need; no AKI, which §4.2.1.1 allows for self-signed certificates.
 */
export async function createRootCa(options: CreateRootCaOptions): Promise<CertificateAuthority> {
  const { commonName, clock, validityDays = 3650, algorithm = DEFAULT_KEY_ALGORITHM } = options;
  checkPositive('validityDays', validityDays);
  const name = commonNameSubject(commonName);
  const keys = await generateKeyPair(algorithm);
  const now = clock.now().getTime();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name,
    notBefore: new Date(now - CLOCK_SKEW_ALLOWANCE_MS),
    notAfter: new Date(now + validityDays * DAY_MS),
    keys,
    signingAlgorithm: signingAlgorithmFor(algorithm),
    extensions: [...caExtensions(), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
  return { certificate, privateKey: keys.privateKey, algorithm };
}

export interface CreateIntermediateCaOptions {
  readonly commonName: string;
  readonly clock: Clock;
  readonly validityDays?: number;
  readonly algorithm?: KeyAlgorithm;
  /** RFC 5280 §4.2.1.9; 0 means this CA issues leaves only. */
  readonly pathLength?: number;
}

/** An issuing CA under `parent`; its validity never extends past the parent's. */
export async function createIntermediateCa(
  parent: CertificateAuthority,
  options: CreateIntermediateCaOptions,
): Promise<CertificateAuthority> {
  const { commonName, clock, validityDays = 365, algorithm = DEFAULT_KEY_ALGORITHM, pathLength = 0 } = options;
  checkPositive('validityDays', validityDays);
  if (!Number.isInteger(pathLength) || pathLength < 0) throw new RangeError('pathLength must be a non-negative integer');
  const subject = commonNameSubject(commonName);
  const window = windowUnder(parent, clock, validityDays * DAY_MS);
  const keys = await generateKeyPair(algorithm);
  const certificate = await signUnder(parent, {
    subject,
    publicKey: keys.publicKey,
    window,
    extensions: caExtensions(pathLength),
  });
  return { certificate, privateKey: keys.privateKey, algorithm };
}

/**
 * A cross-certificate for root rotation: `subject`'s name and public key (a newer root) signed by
 * `issuer` (the older root), with the CA constraints of a root. Its SKI is computed the same way
 * as the newer root's own, so an intermediate's AKI matches both, and relying parties that trust
 * only the older root build leaf → intermediate → cross-certificate → older root (RFC 4158 §2.3).
 * Its validity is the newer root's, clamped to the older root's.
 */
export async function crossCertify(issuer: CertificateAuthority, subject: x509.X509Certificate, clock: Clock): Promise<x509.X509Certificate> {
  const lifetime = subject.notAfter.getTime() - clock.now().getTime();
  return signUnder(issuer, {
    subject: subject.subjectName.toJSON(),
    publicKey: await subject.publicKey.export(),
    window: windowUnder(issuer, clock, Math.max(lifetime, MIN_TTL_MS)),
    extensions: caExtensions(),
  });
}

export interface IssueServerCertificateOptions {
  readonly publicKey: CryptoKey;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly commonName: string;
  readonly clock: Clock;
  readonly ttlMs: number;
}

/**
 * A TLS server certificate (also usable as a client certificate) for the control plane's own
 * endpoints. Clients match the host only against the SAN (RFC 9525 §6.3), so at least one DNS
 * name or IP address is required; the CN is informational.
 */
export async function issueServerCertificate(
  issuer: CertificateAuthority,
  options: IssueServerCertificateOptions,
): Promise<x509.X509Certificate> {
  const { publicKey, dnsNames, ipAddresses, commonName, clock, ttlMs } = options;
  checkLeafPublicKey(publicKey);
  checkPositive('ttlMs', ttlMs, MIN_TTL_MS);
  if (dnsNames.length + ipAddresses.length === 0) throw new RangeError('At least one DNS name or IP address is required');
  dnsNames.forEach(checkDnsName);
  ipAddresses.forEach(checkIpAddress);
  const subject = commonNameSubject(commonName);
  const names: x509.JsonGeneralNames = [
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  return signUnder(issuer, {
    subject,
    publicKey,
    window: windowUnder(issuer, clock, ttlMs),
    extensions: [...leafExtensions(), new x509.SubjectAlternativeNameExtension(names, false)],
  });
}

/**
 * A leaf public key already checked to be one of ours: a CSR's SubjectPublicKeyInfo as
 * {@link parseCsr} returns it, used byte for byte.
 */
export interface LeafPublicKey {
  /** DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). */
  readonly spki: Uint8Array;
  readonly algorithm: KeyAlgorithm;
}

export interface IssueSvidOptions {
  readonly publicKey: CryptoKey | LeafPublicKey;
  readonly spiffeId: SpiffeId;
  readonly dnsNames?: readonly string[];
  readonly clock: Clock;
  readonly ttlMs: number;
  /** RFC 5280 §4.2.1.13 */
  readonly crlDistributionUrl?: string;
  /** RFC 5280 §4.2.2.1, access method id-ad-ocsp (RFC 6960 §3.1) */
  readonly ocspUrl?: string;
  /** Omitted by default: the SPIFFE ID, not the subject, is the identity (X509-SVID §2, §3.1). */
  readonly commonName?: string;
}

/** A freshly signed SVID as DER, with the fields its record needs, so the hot path never re-parses it. */
export interface IssuedSvid {
  readonly der: Buffer;
  /** Canonical serial hex (see `canonicalSerial`). */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const EMPTY_NAME = Buffer.from([0x30, 0x00]);

async function spkiOf(publicKey: CryptoKey | LeafPublicKey): Promise<Uint8Array> {
  if ('spki' in publicKey) return publicKey.spki;
  checkLeafPublicKey(publicKey);
  return new Uint8Array(await webcrypto.subtle.exportKey('spki', publicKey));
}

/**
 * An X.509-SVID leaf: exactly one URI SAN holding `spiffeId`, which must have a path (X509-SVID
 * §2, §3.1), optionally DNS SANs, and the leaf constraints of §4 (see {@link leafExtensions}),
 * written by tbs-svid.ts.
 *
 * Without `commonName` the subject is empty, and RFC 5280 §4.1.2.6 (restated in X509-SVID §3.1)
 * then requires the SAN extension to be critical.
 */
export async function issueSvidDer(issuer: CertificateAuthority, options: IssueSvidOptions): Promise<IssuedSvid> {
  const { publicKey, spiffeId, dnsNames = [], clock, ttlMs, crlDistributionUrl, ocspUrl, commonName } = options;
  const spki = await spkiOf(publicKey);
  checkPositive('ttlMs', ttlMs, MIN_TTL_MS);
  // The brand can be forged with a cast; the ID goes into a signed certificate, so re-check it.
  const parsed = parseSpiffeId(spiffeId);
  if (parsed.path === '') {
    throw new PkiError('pki.spiffe_id_invalid', `An SVID's SPIFFE ID must have a path (X509-SVID §3.1): ${parsed.id}`);
  }
  dnsNames.forEach(checkDnsName);
  if (crlDistributionUrl !== undefined) checkDistributionUrl('crlDistributionUrl', crlDistributionUrl);
  if (ocspUrl !== undefined) checkDistributionUrl('ocspUrl', ocspUrl);
  const subject = commonName === undefined ? EMPTY_NAME : Buffer.from(new x509.Name(commonNameSubject(commonName)).toArrayBuffer());
  const { notBefore, notAfter } = windowUnder(issuer, clock, ttlMs);
  const serialNumber = canonicalSerial(randomSerialNumber())!;
  const der = writeSvid(issuer, {
    serialNumber,
    subject,
    spki,
    notBefore,
    notAfter,
    spiffeId: parsed.id,
    dnsNames,
    ...(crlDistributionUrl === undefined ? {} : { crlDistributionUrl }),
    ...(ocspUrl === undefined ? {} : { ocspUrl }),
  });
  // DER times have whole seconds (RFC 5280 §4.1.2.5); report what the certificate says.
  return { der, serialNumber, notBefore: wholeSeconds(notBefore), notAfter: wholeSeconds(notAfter) };
}

/** {@link issueSvidDer}, parsed: for callers that inspect the certificate rather than store it. */
export async function issueSvid(issuer: CertificateAuthority, options: IssueSvidOptions): Promise<x509.X509Certificate> {
  return new x509.X509Certificate((await issueSvidDer(issuer, options)).der);
}

const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

/** What {@link parseCsr} returns: the proven public key, nothing else of the request. */
export type ParsedCsr = LeafPublicKey;

/** Far above any CSR for a supported key (an RSA-3072 CSR is under 2 KiB of PEM). */
const MAX_CSR_PEM_LENGTH = 64 * 1024;

const CSR_PEM = /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1CERTIFICATE REQUEST-----\s*$/;

function csrInvalid(reason: string, cause?: unknown): PkiError {
  return new PkiError('pki.csr_invalid', `The CSR is not valid: ${reason}`, cause === undefined ? {} : { cause });
}

/** Signature algorithms accepted on a CSR, by OID: the hash to verify with (null: Ed25519 hashes internally). */
const CSR_SIGNATURES: Readonly<Record<string, { readonly key: 'ec' | 'ed25519' | 'rsa'; readonly hash: string | null }>> = {
  '1.2.840.10045.4.3.2': { key: 'ec', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { key: 'ec', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { key: 'ec', hash: 'sha512' },
  '1.3.101.112': { key: 'ed25519', hash: null },
  '1.2.840.113549.1.1.11': { key: 'rsa', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { key: 'rsa', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { key: 'rsa', hash: 'sha512' },
};
const RSASSA_PSS = '1.2.840.113549.1.1.10';
const MGF1 = '1.2.840.113549.1.1.8';
const PSS_HASHES: Readonly<Record<string, string>> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

const keyFamily = (alg: KeyAlgorithm): 'ec' | 'ed25519' | 'rsa' => (alg === 'ecdsa-p256' ? 'ec' : alg === 'ed25519' ? 'ed25519' : 'rsa');

interface SignatureCheck {
  readonly hash: string | null;
  readonly pssSaltLength?: number;
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1): the hash and MGF1's hash must be the same SHA-2; the
 * defaults (SHA-1) are refused. Returns undefined for anything else.
 */
function pssParams(buf: Uint8Array, params: Tlv | undefined): SignatureCheck | undefined {
  if (params === undefined || params.tag !== 0x30) return undefined;
  let hash: string | undefined;
  let mgfHash: string | undefined;
  let saltLength = 20;
  for (const field of childrenOf(buf, params)) {
    const [inner] = childrenOf(buf, field);
    if (inner === undefined) return undefined;
    if (field.tag === 0xa0) hash = PSS_HASHES[oidText(contentBytes(buf, childrenOf(buf, inner)[0]!))];
    else if (field.tag === 0xa1) {
      const [mgfOid, mgfAlg] = childrenOf(buf, inner);
      if (mgfOid === undefined || mgfAlg === undefined || oidText(contentBytes(buf, mgfOid)) !== MGF1) return undefined;
      mgfHash = PSS_HASHES[oidText(contentBytes(buf, childrenOf(buf, mgfAlg)[0]!))];
    } else if (field.tag === 0xa2) saltLength = Number.parseInt(Buffer.from(contentBytes(buf, inner)).toString('hex') || '0', 16);
    else if (field.tag !== 0xa3) return undefined;
  }
  if (hash === undefined || hash !== mgfHash || !Number.isSafeInteger(saltLength)) return undefined;
  return { hash, pssSaltLength: saltLength };
}

/**
 * Reads a PKCS #10 request (RFC 2986) and proves the requester holds the private key by checking
 * its self-signature (§3, §4.2). Keys other than P-256, Ed25519 and RSA 2048/3072 are refused
 * with `pki.key_unsupported`; signatures over SHA-1 or weaker with `pki.csr_invalid`.
 *
 * Only the public key is taken from the CSR. Its subject, requested SANs and any other
 * extensions are attacker-controlled and never trusted: the server decides the identity from
 * the authenticated caller and sets every name and extension itself.
 *
 * The request is read with the small DER reader and checked with Node's `crypto.verify`: this
 * runs once per issued SVID, and the ASN.1 object model cost ten times the signature check.
 *
 * @throws PkiError `pki.csr_invalid`, `pki.key_unsupported`
 */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  if (typeof pem !== 'string' || pem.length > MAX_CSR_PEM_LENGTH) throw csrInvalid('not a PEM string of reasonable size');
  const armour = CSR_PEM.exec(pem);
  if (armour === null) throw csrInvalid('not a PEM-encoded PKCS #10 request: expected exactly one PEM block labelled CERTIFICATE REQUEST');
  const buf = new Uint8Array(Buffer.from(armour[2]!, 'base64'));
  let cri: Tlv, spkiTlv: Tlv, sigOid: string, sigParams: Tlv | undefined, signature: Uint8Array;
  try {
    const outer = readTlv(buf, 0);
    // The parser would ignore trailing bytes; a request carrying extra data is not what its signer produced.
    if (outer.tag !== 0x30 || outer.end !== buf.length) throw new RangeError('not exactly one DER SEQUENCE');
    const [info, algorithm, bits, ...extra] = childrenOf(buf, outer);
    if (info?.tag !== 0x30 || algorithm?.tag !== 0x30 || bits?.tag !== 0x03 || extra.length > 0) throw new RangeError('not a CertificationRequest');
    const [version, subject, spki, attributes, ...more] = childrenOf(buf, info);
    const versionBytes = version && contentBytes(buf, version);
    if (version?.tag !== 0x02 || versionBytes?.length !== 1 || versionBytes[0] !== 0 || subject?.tag !== 0x30 || spki?.tag !== 0x30 || attributes?.tag !== 0xa0 || more.length > 0) {
      throw new RangeError('not a version 1 CertificationRequestInfo');
    }
    const [oid, params, ...rest] = childrenOf(buf, algorithm);
    if (oid?.tag !== 0x06 || rest.length > 0) throw new RangeError('malformed signatureAlgorithm');
    const bitString = contentBytes(buf, bits);
    if (bitString[0] !== 0) throw new RangeError('signature BIT STRING with unused bits');
    cri = info;
    spkiTlv = spki;
    sigOid = oidText(contentBytes(buf, oid));
    sigParams = params;
    signature = bitString.subarray(1);
  } catch (err) {
    throw csrInvalid('not a PEM-encoded PKCS #10 request', err);
  }

  const spki = elementBytes(buf, spkiTlv);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw csrInvalid('the public key cannot be decoded', err);
  }
  const algorithm = keyAlgorithmOfKeyObject(key);
  if (algorithm === undefined) {
    throw new PkiError('pki.key_unsupported', 'unsupported key type; use ECDSA P-256, Ed25519, or RSA 2048/3072', {
      details: { key_type: key.asymmetricKeyType ?? 'unknown', supported: KEY_ALGORITHMS },
    });
  }
  const known = CSR_SIGNATURES[sigOid];
  let check: SignatureCheck | undefined;
  try {
    if (known !== undefined && known.key === keyFamily(algorithm) && (sigParams === undefined || sigParams.tag === 0x05)) check = known;
    else if (sigOid === RSASSA_PSS && keyFamily(algorithm) === 'rsa') check = pssParams(buf, sigParams);
  } catch {
    check = undefined;
  }
  if (check === undefined) throw csrInvalid(`unsupported signature algorithm ${sigOid}`);

  let verified: boolean;
  try {
    const data = elementBytes(buf, cri);
    verified =
      check.pssSaltLength === undefined
        ? verify(check.hash, data, key, signature)
        : verify(check.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: check.pssSaltLength }, signature);
  } catch (err) {
    throw csrInvalid('the signature cannot be checked', err);
  }
  if (!verified) throw csrInvalid('the signature does not verify');
  return { spki, algorithm };
}

/** PEM bundle (RFC 7468 §5.1), leaf first then issuers, as TLS and `openssl verify` expect. */
export function chainPem(...certs: x509.X509Certificate[]): string {
  return certs.map((c) => `${c.toString('pem')}\n`).join('');
}
