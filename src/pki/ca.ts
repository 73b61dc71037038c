/**
 * The certificate authority hierarchy: an offline-style root, intermediates under it, and the leaf
 * certificates they issue (TLS server certificates for the control plane itself and X.509-SVIDs
 * for workloads). Pure domain code: keys and certificates in, certificates out; time comes only
 * from the injected {@link Clock}.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import {
  type CryptoKey,
  DEFAULT_KEY_ALGORITHM,
  generateKeyPair,
  type KeyAlgorithm,
  keyAlgorithmOf,
  signingAlgorithmFor,
} from './keys.js';
import { parseSpiffeId, type SpiffeId } from './spiffe.js';

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

export interface IssueSvidOptions {
  readonly publicKey: CryptoKey;
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

/**
 * An X.509-SVID leaf: exactly one URI SAN holding `spiffeId`, which must have a path (X509-SVID
 * §2, §3.1), optionally DNS SANs, and the leaf constraints of §4 (see {@link leafExtensions}).
 *
 * Without `commonName` the subject is empty, and RFC 5280 §4.1.2.6 (restated in X509-SVID §3.1)
 * then requires the SAN extension to be critical.
 */
export async function issueSvid(issuer: CertificateAuthority, options: IssueSvidOptions): Promise<x509.X509Certificate> {
  const { publicKey, spiffeId, dnsNames = [], clock, ttlMs, crlDistributionUrl, ocspUrl, commonName } = options;
  checkLeafPublicKey(publicKey);
  checkPositive('ttlMs', ttlMs, MIN_TTL_MS);
  // The brand can be forged with a cast; the ID goes into a signed certificate, so re-check it.
  const parsed = parseSpiffeId(spiffeId);
  if (parsed.path === '') {
    throw new PkiError('pki.spiffe_id_invalid', `An SVID's SPIFFE ID must have a path (X509-SVID §3.1): ${parsed.id}`);
  }
  dnsNames.forEach(checkDnsName);
  const subject = commonName === undefined ? undefined : commonNameSubject(commonName);
  const names: x509.JsonGeneralNames = [
    { type: 'url', value: parsed.id },
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    ...leafExtensions(),
    new x509.SubjectAlternativeNameExtension(names, subject === undefined),
  ];
  if (crlDistributionUrl !== undefined) {
    checkDistributionUrl('crlDistributionUrl', crlDistributionUrl);
    extensions.push(new x509.CRLDistributionPointsExtension([crlDistributionUrl], false));
  }
  if (ocspUrl !== undefined) {
    checkDistributionUrl('ocspUrl', ocspUrl);
    extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [ocspUrl] }, false));
  }
  return signUnder(issuer, {
    ...(subject === undefined ? {} : { subject }),
    publicKey,
    window: windowUnder(issuer, clock, ttlMs),
    extensions,
  });
}

export interface ParsedCsr {
  /** The requester's public key, the only part of the CSR the CA uses. */
  readonly publicKey: CryptoKey;
  readonly algorithm: KeyAlgorithm;
  /** As requested, for logs only; it is never copied into a certificate. */
  readonly requestedSubject: string;
}

/** Far above any CSR for a supported key (an RSA-3072 CSR is under 2 KiB of PEM). */
const MAX_CSR_PEM_LENGTH = 64 * 1024;

const CSR_PEM_LABELS = new Set(['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
const STRONG_HASHES = new Set(['SHA-256', 'SHA-384', 'SHA-512']);

/**
 * Whether `der` is exactly one definite-length TLV (X.690 §8.1.3) with nothing after it. The
 * ASN.1 parser ignores trailing bytes; a request that carries extra data is not what its
 * signer produced and is refused rather than silently trimmed.
 */
function isSingleDerElement(der: Uint8Array): boolean {
  const [, first] = der;
  if (first === undefined) return false;
  if (first < 0x80) return der.length === 2 + first;
  const lengthOctets = first & 0x7f;
  if (lengthOctets === 0 || lengthOctets > 4 || der.length < 2 + lengthOctets) return false;
  let length = 0;
  for (const octet of der.subarray(2, 2 + lengthOctets)) length = length * 256 + octet;
  return der.length === 2 + lengthOctets + length;
}

function csrInvalid(reason: string, cause?: unknown): PkiError {
  return new PkiError('pki.csr_invalid', `The CSR is not valid: ${reason}`, cause === undefined ? {} : { cause });
}

/**
 * `x509.HashedAlgorithm` extends the DOM `Algorithm`, which does not resolve without the DOM lib,
 * so the shape is spelled out here.
 */
interface SignatureAlgorithm {
  readonly name: string;
  readonly hash?: unknown;
}

function hashName(alg: SignatureAlgorithm): string | undefined {
  const hash: unknown = alg.hash;
  if (typeof hash === 'string') return hash.toUpperCase();
  if (typeof hash === 'object' && hash !== null && 'name' in hash && typeof hash.name === 'string') {
    return hash.name.toUpperCase();
  }
  return undefined;
}

function signatureMatchesKey(key: KeyAlgorithm, sig: SignatureAlgorithm): boolean {
  switch (key) {
    case 'ed25519':
      return sig.name === 'Ed25519';
    case 'ecdsa-p256':
      return sig.name === 'ECDSA' && STRONG_HASHES.has(hashName(sig) ?? '');
    case 'rsa-2048':
    case 'rsa-3072':
      return (sig.name === 'RSASSA-PKCS1-v1_5' || sig.name === 'RSA-PSS') && STRONG_HASHES.has(hashName(sig) ?? '');
  }
}

/**
 * Reads a PKCS #10 request (RFC 2986) and proves the requester holds the private key by checking
 * its self-signature (§3, §4.2). Keys other than P-256, Ed25519 and RSA 2048/3072, and signatures
 * over SHA-1 or weaker, are refused.
 *
 * Only the public key is taken from the CSR. Its subject, requested SANs and any other
 * extensions are attacker-controlled and never trusted: the server decides the identity from
 * the authenticated caller and sets every name and extension itself.
 *
 * @throws PkiError `pki.csr_invalid`
 */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  if (typeof pem !== 'string' || pem.length > MAX_CSR_PEM_LENGTH) throw csrInvalid('not a PEM string of reasonable size');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    const blocks = x509.PemConverter.decodeWithHeaders(pem);
    const [block, ...rest] = blocks;
    if (block === undefined || rest.length > 0 || !CSR_PEM_LABELS.has(block.type)) {
      throw new Error('expected exactly one PEM block labelled CERTIFICATE REQUEST');
    }
    if (!isSingleDerElement(new Uint8Array(block.rawData))) throw new Error('trailing data after the request');
    csr = new x509.Pkcs10CertificateRequest(block.rawData);
  } catch (err) {
    throw csrInvalid('not a PEM-encoded PKCS #10 request', err);
  }

  let algorithm: KeyAlgorithm | undefined;
  let signature: SignatureAlgorithm;
  try {
    algorithm = keyAlgorithmOf(csr.publicKey.algorithm);
    signature = csr.signatureAlgorithm as SignatureAlgorithm;
  } catch (err) {
    throw csrInvalid('the key or signature algorithm cannot be decoded', err);
  }
  if (algorithm === undefined) {
    throw csrInvalid('unsupported key type; use ECDSA P-256, Ed25519, or RSA 2048/3072');
  }
  if (!signatureMatchesKey(algorithm, signature)) {
    throw csrInvalid(`unsupported signature algorithm ${signature.name} ${hashName(signature) ?? ''}`.trimEnd());
  }

  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (err) {
    throw csrInvalid('the signature cannot be checked', err);
  }
  if (!verified) throw csrInvalid('the signature does not verify');

  let publicKey: CryptoKey;
  try {
    publicKey = await csr.publicKey.export();
  } catch (err) {
    throw csrInvalid('the public key cannot be imported', err);
  }
  let requestedSubject = '';
  try {
    requestedSubject = csr.subject;
  } catch {
    // Informational only; an undecodable subject is no reason to refuse the key.
  }
  return { publicKey, algorithm, requestedSubject };
}

/** PEM bundle (RFC 7468 §5.1), leaf first then issuers, as TLS and `openssl verify` expect. */
export function chainPem(...certs: x509.X509Certificate[]): string {
  return certs.map((c) => `${c.toString('pem')}\n`).join('');
}
