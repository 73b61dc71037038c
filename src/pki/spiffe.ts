/**
 * SPIFFE IDs (SPIFFE-ID spec §2) and how an X.509-SVID carries one (X509-SVID spec §2).
 *
 * Parsing is deliberately stricter than a general URI parser: the spec restricts both the trust
 * domain and the path to a small ASCII alphabet with no percent-encoding, so an ID has exactly
 * one spelling and two IDs are equal exactly when their strings are. Authorization compares IDs
 * as strings, which is only sound because of that.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { PkiError } from '../core/errors.js';

export type SpiffeId = string & { readonly __brand: 'SpiffeId' };

export interface ParsedSpiffeId {
  readonly id: SpiffeId;
  /** e.g. `example.org` */
  readonly trustDomain: string;
  /** `''` for a trust-domain ID, otherwise `/seg/seg…` */
  readonly path: string;
}

const SCHEME_PREFIX = 'spiffe://';
/** §2.3: implementations MUST support 2048 bytes and SHOULD NOT generate more; we accept no more. */
export const MAX_SPIFFE_ID_LENGTH = 2048;
/** §2.3: the host component of RFC 3986 is at most 255 characters. */
export const MAX_TRUST_DOMAIN_LENGTH = 255;

const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const PATH_SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;

function invalid(input: string, reason: string): PkiError {
  const shown = input.length > 80 ? `${input.slice(0, 80)}…` : input;
  return new PkiError('pki.spiffe_id_invalid', `Invalid SPIFFE ID ${JSON.stringify(shown)}: ${reason}`);
}

/** Names the first rule a string outside the allowed alphabet breaks, for a useful message. */
function whyNotAllowed(part: string, allowed: string): string {
  if (part.includes('?')) return 'a query is not allowed';
  if (part.includes('#')) return 'a fragment is not allowed';
  if (part.includes('%')) return 'percent-encoded characters are not allowed';
  return `characters are limited to ${allowed}`;
}

function checkTrustDomain(input: string, td: string): void {
  if (td === '') throw invalid(input, 'the trust domain is missing');
  if (td.length > MAX_TRUST_DOMAIN_LENGTH) {
    throw invalid(input, `the trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`);
  }
  if (TRUST_DOMAIN_CHARS.test(td)) return;
  if (td.includes('@')) throw invalid(input, 'userinfo is not allowed in the trust domain');
  if (td.startsWith('[')) throw invalid(input, 'an IPv6 address is not a valid trust domain');
  if (td.includes(':')) throw invalid(input, 'a port is not allowed in the trust domain');
  if (/[A-Z]/.test(td) && TRUST_DOMAIN_CHARS.test(td.toLowerCase())) {
    throw invalid(input, 'the trust domain must be lowercase');
  }
  throw invalid(input, `trust domain ${whyNotAllowed(td, '[a-z0-9.-_]')}`);
}

function checkPath(input: string, path: string): void {
  if (path === '') return;
  const segments = path.slice(1).split('/');
  for (const [i, segment] of segments.entries()) {
    if (segment === '') {
      throw invalid(input, i === segments.length - 1 ? 'a trailing "/" is not allowed' : 'empty path segments are not allowed');
    }
    if (segment === '.' || segment === '..') {
      throw invalid(input, 'path segments "." and ".." are not allowed');
    }
    if (!PATH_SEGMENT_CHARS.test(segment)) {
      throw invalid(input, `path segment ${whyNotAllowed(segment, '[A-Za-z0-9.-_]')}`);
    }
  }
}

/**
 * Parses a SPIFFE ID per SPIFFE-ID §2: scheme exactly `spiffe`, a non-empty lowercase trust
 * domain of `[a-z0-9.-_]` with no userinfo or port (§2.1), an optional path whose segments are
 * `[A-Za-z0-9.-_]`, none empty, `.` or `..`, no trailing `/` (§2.2), no query or fragment (§2),
 * no percent-encoding anywhere, and at most 2048 characters (§2.3).
 *
 * The scheme is matched in lowercase only: §2.4 calls it case-insensitive, but §2.1 already forbids
 * uppercase in the trust domain, and accepting `SPIFFE://` would give one ID two spellings.
 *
 * @throws PkiError `pki.spiffe_id_invalid`
 */
export function parseSpiffeId(s: string): ParsedSpiffeId {
  if (typeof s !== 'string' || s === '') throw invalid(String(s ?? ''), 'it is empty');
  if (s.length > MAX_SPIFFE_ID_LENGTH) {
    throw invalid(s, `it is longer than ${MAX_SPIFFE_ID_LENGTH} characters`);
  }
  if (!s.startsWith(SCHEME_PREFIX)) throw invalid(s, 'the scheme must be "spiffe://"');
  const rest = s.slice(SCHEME_PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  checkTrustDomain(s, trustDomain);
  checkPath(s, path);
  return { id: s as SpiffeId, trustDomain, path };
}

export function isSpiffeId(s: string): s is SpiffeId {
  try {
    parseSpiffeId(s);
    return true;
  } catch {
    return false;
  }
}

const SUBJECT_ALT_NAME_OID = '2.5.29.17';
const BASIC_CONSTRAINTS_OID = '2.5.29.19';

/**
 * The SPIFFE ID an X.509-SVID asserts. X509-SVID §2 and §5.2: exactly one URI SAN (any number of
 * other SAN types), and it must be a SPIFFE ID; a leaf's ID must have a path (§3.1) and a signing
 * certificate's must not (§3.2).
 *
 * This only reads the identity. It does not validate the chain, validity period, key usage or
 * `cA` flag (§5.1, §5.2), which the caller must have done before trusting the result.
 *
 * @throws PkiError `pki.spiffe_id_invalid`
 */
export function spiffeIdOf(cert: x509.X509Certificate): SpiffeId {
  let uris: string[];
  let isCa: boolean;
  try {
    // By OID rather than by class: `instanceof` breaks if two copies of the library are loaded.
    const [sanExt, ...more] = cert.getExtensions(SUBJECT_ALT_NAME_OID);
    // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension.
    if (sanExt === undefined || more.length > 0) {
      throw new PkiError('pki.spiffe_id_invalid', 'An X.509-SVID has exactly one subjectAltName extension');
    }
    const san = new x509.SubjectAlternativeNameExtension(sanExt.rawData);
    uris = san.names.items.filter((n) => n.type === 'url').map((n) => n.value);
    const bc = cert.getExtension(BASIC_CONSTRAINTS_OID);
    isCa = bc !== null && new x509.BasicConstraintsExtension(bc.rawData).ca;
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('pki.spiffe_id_invalid', 'The certificate extensions could not be decoded', { cause: err });
  }
  const [uri, ...otherUris] = uris;
  if (uri === undefined || otherUris.length > 0) {
    throw new PkiError('pki.spiffe_id_invalid', `The certificate has ${uris.length} URI SANs; an X.509-SVID has exactly one`);
  }
  const parsed = parseSpiffeId(uri);
  if (!isCa && parsed.path === '') {
    throw invalid(parsed.id, 'a leaf SVID must have a path (X509-SVID §3.1)');
  }
  if (isCa && parsed.path !== '') {
    throw invalid(parsed.id, 'a signing certificate SVID must not have a path (X509-SVID §3.2)');
  }
  return parsed.id;
}
