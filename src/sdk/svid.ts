/**
 * X.509-SVIDs on the relying side: reading the SPIFFE ID of a certificate and validating an SVID
 * chain against a trust bundle by the X509-SVID standard (§5), with the time injected so that
 * callers and tests decide what "now" is. Usable without a Rampart server.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { spiffeIdOf as spiffeIdOfCertificate, parseSpiffeId, type SpiffeId } from '../pki/spiffe.js';

// @peculiar/x509 needs a crypto provider for signature checks; SDK users may never load src/pki/keys.ts, which sets it too.
x509.cryptoProvider.set(webcrypto);

/** A certificate as callers hold it: PEM text, DER bytes, or an already parsed certificate. */
export type CertificateInput = string | Uint8Array | x509.X509Certificate;

/**
 * Why {@link verifySvid} refused a chain; `code` is stable.
 *
 * @example
 * ```ts
 * try { await verifySvid(chain, bundle); } catch (err) { if (err instanceof SvidError) log.warn(err.code); }
 * ```
 */
export class SvidError extends Error {
  readonly code: 'svid.malformed' | 'svid.not_leaf' | 'svid.key_usage' | 'svid.untrusted' | 'svid.expired' | 'svid.not_yet_valid' | 'svid.forbidden' | 'svid.revoked' | 'svid.revocation_unavailable';
  constructor(code: SvidError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SvidError';
    this.code = code;
  }
}

function toCertificate(input: CertificateInput): x509.X509Certificate {
  if (input instanceof x509.X509Certificate) return input;
  try {
    return new x509.X509Certificate(input);
  } catch (err) {
    throw new SvidError('svid.malformed', 'not an X.509 certificate', { cause: err });
  }
}

/**
 * Every certificate in a PEM text (in order), or the one given.
 *
 * @example
 * ```ts
 * const [leaf, ...intermediates] = certificatesOf(readFileSync('svid.pem', 'utf8'));
 * ```
 */
export function certificatesOf(input: CertificateInput | readonly CertificateInput[]): x509.X509Certificate[] {
  if (Array.isArray(input)) return (input as readonly CertificateInput[]).flatMap((c) => certificatesOf(c));
  if (typeof input === 'string') {
    let blocks: ArrayBuffer[];
    try {
      blocks = x509.PemConverter.decode(input);
    } catch (err) {
      throw new SvidError('svid.malformed', 'not PEM', { cause: err });
    }
    if (blocks.length === 0) throw new SvidError('svid.malformed', 'no certificate in the PEM text');
    return blocks.map((b) => toCertificate(new Uint8Array(b)));
  }
  return [toCertificate(input as CertificateInput)];
}

/**
 * The SPIFFE ID an X.509-SVID asserts: its one URI SAN (X509-SVID §2). It does not validate
 * anything else; use {@link verifySvid} before trusting it.
 *
 * @throws SvidError `svid.malformed` when the certificate has no or several URI SANs or the URI
 *   is not a SPIFFE ID
 * @example
 * ```ts
 * const id = spiffeIdOf(tlsSocket.getPeerX509Certificate()!.raw); // 'spiffe://acme.rampart.local/ns/pay/sa/api'
 * ```
 */
export function spiffeIdOf(cert: CertificateInput): SpiffeId {
  try {
    return spiffeIdOfCertificate(toCertificate(cert));
  } catch (err) {
    if (err instanceof SvidError) throw err;
    throw new SvidError('svid.malformed', err instanceof Error ? err.message : 'not an X.509-SVID', { cause: err });
  }
}

export interface VerifySvidOptions {
  /** The validation time (RFC 5280 §6.1.1 (b)); default the current time. */
  readonly at?: Date;
  /** Accept only these SPIFFE IDs, or what the callback accepts. Default: any ID of a trusted chain. */
  readonly authorize?: readonly string[] | ((spiffeId: SpiffeId) => boolean);
}

export interface VerifiedSvid {
  readonly spiffeId: SpiffeId;
  readonly trustDomain: string;
  /** The validated path: the leaf, the intermediates used, and the bundle certificate it ends at. */
  readonly path: readonly x509.X509Certificate[];
}

/** Longer paths than a Rampart hierarchy ever has (leaf, intermediate, cross-certificate, root). */
const MAX_PATH_LENGTH = 6;

const isCa = (c: x509.X509Certificate): boolean => c.getExtension(x509.BasicConstraintsExtension)?.ca === true;
const keyUsage = (c: x509.X509Certificate): number | undefined => c.getExtension(x509.KeyUsagesExtension)?.usages;
const sameCertificate = (a: x509.X509Certificate, b: x509.X509Certificate): boolean => Buffer.from(a.rawData).equals(Buffer.from(b.rawData));

function checkValidity(cert: x509.X509Certificate, at: Date): void {
  if (at < cert.notBefore) throw new SvidError('svid.not_yet_valid', `${cert.subject || 'the leaf'} is not valid before ${cert.notBefore.toISOString()}`);
  if (at > cert.notAfter) throw new SvidError('svid.expired', `${cert.subject || 'the leaf'} expired at ${cert.notAfter.toISOString()}`);
}

async function signedBy(child: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (child.issuer !== issuer.subject) return false;
  try {
    return await child.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/**
 * Validates an X.509-SVID chain (leaf first, then any intermediates the peer sent) against a
 * trust bundle, by X509-SVID §5: the leaf has exactly one URI SAN holding a SPIFFE ID with a path,
 * is not a CA, has digitalSignature and neither keyCertSign nor cRLSign (§4.3); every issuer on
 * the path is a CA allowed to sign certificates; every signature verifies; every certificate is
 * valid at `at`; the path ends at a certificate of the bundle (any bundle certificate is a trust
 * anchor, as in the SPIFFE bundle). Then `authorize` decides on the ID.
 *
 * @throws SvidError with the reason as its code
 * @example
 * ```ts
 * const { spiffeId } = await verifySvid(peerChainPem, bundlePem, { authorize: ['spiffe://acme.rampart.local/ns/pay/sa/api'] });
 * ```
 */
export async function verifySvid(chain: CertificateInput | readonly CertificateInput[], bundle: CertificateInput | readonly CertificateInput[], options: VerifySvidOptions = {}): Promise<VerifiedSvid> {
  const [leaf, ...intermediates] = certificatesOf(chain);
  const anchors = certificatesOf(bundle);
  if (leaf === undefined) throw new SvidError('svid.malformed', 'empty chain');
  const at = options.at ?? new Date();
  const spiffeId = spiffeIdOf(leaf);
  if (isCa(leaf)) throw new SvidError('svid.not_leaf', 'the certificate is a CA, not a leaf SVID (X509-SVID §4.1)');
  const usage = keyUsage(leaf);
  if (usage === undefined || (usage & x509.KeyUsageFlags.digitalSignature) === 0 || (usage & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) {
    throw new SvidError('svid.key_usage', 'a leaf SVID has digitalSignature and neither keyCertSign nor cRLSign (X509-SVID §4.3)');
  }
  checkValidity(leaf, at);

  const path = [leaf];
  for (let current = leaf; ; ) {
    // Prefer a bundle certificate: reaching one ends the path.
    const anchor = await findIssuer(current, anchors);
    if (anchor) {
      checkIssuer(anchor, at);
      path.push(anchor);
      break;
    }
    if (path.length >= MAX_PATH_LENGTH) throw new SvidError('svid.untrusted', 'no path to the trust bundle within the length limit');
    const next = await findIssuer(current, intermediates.filter((c) => !path.some((p) => sameCertificate(p, c))));
    if (!next) throw new SvidError('svid.untrusted', `no issuer of ${current.subject || 'the leaf'} in the chain or the trust bundle`);
    checkIssuer(next, at);
    path.push(next);
    current = next;
  }
  const authorize = options.authorize;
  const allowed = authorize === undefined ? true : typeof authorize === 'function' ? authorize(spiffeId) : authorize.includes(spiffeId);
  if (!allowed) throw new SvidError('svid.forbidden', `${spiffeId} is not authorized`);
  return { spiffeId, trustDomain: parseSpiffeId(spiffeId).trustDomain, path };
}

async function findIssuer(child: x509.X509Certificate, candidates: readonly x509.X509Certificate[]): Promise<x509.X509Certificate | undefined> {
  for (const candidate of candidates) if (await signedBy(child, candidate)) return candidate;
  return undefined;
}

function checkIssuer(issuer: x509.X509Certificate, at: Date): void {
  if (!isCa(issuer)) throw new SvidError('svid.untrusted', `${issuer.subject} is not a CA`);
  const usage = keyUsage(issuer);
  if (usage !== undefined && (usage & x509.KeyUsageFlags.keyCertSign) === 0) throw new SvidError('svid.untrusted', `${issuer.subject} may not sign certificates`);
  checkValidity(issuer, at);
}
