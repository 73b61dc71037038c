/**
 * What a workload's certificate signing request asks of its SVID. PKCS #10 carries requested
 * extensions in the `extensionRequest` attribute (PKCS #9, RFC 2985 §5.4.2) of
 * CertificationRequestInfo.attributes (RFC 2986 §4.1). The CA never copies anything from there
 * into a certificate (tbs-svid.ts writes every extension itself), but a request that asks for
 * something it will not get is refused rather than silently "fixed": a CSR asking to be a CA is
 * either a mistake or an attack, and either way the caller and the audit log should say so.
 *
 * Read with the small DER reader after `parseCsr` has verified the self-signature, so nothing of
 * an unsigned or tampered request is ever interpreted.
 */
import { PkiError } from '../core/errors.js';
import { type LeafPublicKey, parseCsr } from './ca.js';
import { childrenOf, contentBytes, oidText, readTlv, type Tlv } from './der-reader.js';
import { parseSpiffeId, type SpiffeId } from './spiffe.js';

export interface SvidRequest {
  /** The request's proven public key. */
  readonly publicKey: LeafPublicKey;
  /**
   * The single URI SAN, a syntactically valid SPIFFE ID not yet checked against any tenant;
   * undefined when the request names none.
   */
  readonly spiffeId?: SpiffeId;
  /** Requested DNS SANs, lowercased (RFC 4343: DNS names compare case-insensitively). */
  readonly dnsNames: readonly string[];
}

const OID = {
  extensionRequest: '1.2.840.113549.1.9.14',
  /** Microsoft's pre-PKCS #9 spelling of the same attribute, still emitted by some CAPI tools. */
  msExtensionRequest: '1.3.6.1.4.1.311.2.1.14',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
} as const;

/** GeneralName CHOICE tags (RFC 5280 §4.2.1.6) as they appear on the wire, IMPLICIT. */
const GENERAL_NAME_TYPES: Readonly<Record<number, string>> = {
  0xa0: 'otherName',
  0x81: 'rfc822Name (email)',
  0x82: 'dNSName',
  0xa3: 'x400Address',
  0xa4: 'directoryName',
  0xa5: 'ediPartyName',
  0x86: 'uniformResourceIdentifier',
  0x87: 'iPAddress',
  0x88: 'registeredID',
};
const DNS_NAME_TAG = 0x82;
const URI_TAG = 0x86;

/** KeyUsage bits (RFC 5280 §4.2.1.3) in the BIT STRING's first octet: keyCertSign(5), cRLSign(6). */
const KEY_CERT_SIGN = 0x04;
const CRL_SIGN = 0x02;

/** What the extensionRequest says, before any policy is applied to it. */
interface RequestedExtensions {
  ca: boolean;
  keyCertSign: boolean;
  crlSign: boolean;
  uris: string[];
  dnsNames: string[];
  /** SAN types the CA never issues (IP addresses, email, directory names, …). */
  otherNames: string[];
}

function csrInvalid(reason: string, cause: unknown): PkiError {
  return new PkiError('pki.csr_invalid', `The CSR is not valid: ${reason}`, { cause });
}

const ascii = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');

/** The single element an OCTET STRING or SET wraps, which must fill it exactly. */
function onlyChild(buf: Uint8Array, parent: Tlv, what: string): Tlv {
  const children = childrenOf(buf, parent);
  if (children.length !== 1) throw new RangeError(`${what} must hold exactly one element`);
  return children[0]!;
}

/** extnValue is an OCTET STRING whose content is the DER of the extension's own type (RFC 5280 §4.1). */
function extensionValue(buf: Uint8Array, octets: Tlv): Tlv {
  if (octets.tag !== 0x04) throw new RangeError('extnValue is not an OCTET STRING');
  const inner = readTlv(buf, octets.contentStart);
  if (inner.end !== octets.end) throw new RangeError('extnValue holds more than one element');
  return inner;
}

function readBasicConstraints(buf: Uint8Array, value: Tlv, out: RequestedExtensions): void {
  if (value.tag !== 0x30) throw new RangeError('basicConstraints is not a SEQUENCE');
  const [first] = childrenOf(buf, value);
  // cA BOOLEAN DEFAULT FALSE: absent in DER when false. Any non-zero octet is TRUE in BER; take
  // the request at its most dangerous reading.
  if (first?.tag === 0x01) {
    const flag = contentBytes(buf, first);
    if (flag.length !== 1) throw new RangeError('malformed BOOLEAN');
    out.ca = flag[0] !== 0;
  }
}

function readKeyUsage(buf: Uint8Array, value: Tlv, out: RequestedExtensions): void {
  if (value.tag !== 0x03) throw new RangeError('keyUsage is not a BIT STRING');
  const bits = contentBytes(buf, value);
  const unused = bits[0];
  if (unused === undefined || unused > 7 || (bits.length === 1 && unused !== 0)) throw new RangeError('malformed BIT STRING');
  const first = bits[1] ?? 0;
  out.keyCertSign = (first & KEY_CERT_SIGN) !== 0;
  out.crlSign = (first & CRL_SIGN) !== 0;
}

function readSubjectAltName(buf: Uint8Array, value: Tlv, out: RequestedExtensions): void {
  if (value.tag !== 0x30) throw new RangeError('subjectAltName is not a SEQUENCE');
  for (const name of childrenOf(buf, value)) {
    const type = GENERAL_NAME_TYPES[name.tag];
    if (type === undefined) throw new RangeError(`unknown GeneralName tag 0x${name.tag.toString(16)}`);
    if (name.tag === URI_TAG) out.uris.push(ascii(contentBytes(buf, name)));
    else if (name.tag === DNS_NAME_TAG) out.dnsNames.push(ascii(contentBytes(buf, name)).toLowerCase());
    else out.otherNames.push(type);
  }
}

/** Reads every requested extension this module has an opinion on; others are ignored (never copied). */
function readRequestedExtensions(der: Uint8Array): RequestedExtensions {
  const out: RequestedExtensions = { ca: false, keyCertSign: false, crlSign: false, uris: [], dnsNames: [], otherNames: [] };
  // CertificationRequest → CertificationRequestInfo → attributes [0]: parseCsr checked this shape.
  const [info] = childrenOf(der, readTlv(der, 0));
  const attributes = childrenOf(der, info!)[3]!;
  let seenRequest = false;
  const seen = new Set<string>();
  for (const attribute of childrenOf(der, attributes)) {
    const [type, values, ...rest] = childrenOf(der, attribute);
    if (type?.tag !== 0x06 || values?.tag !== 0x31 || rest.length > 0) throw new RangeError('malformed Attribute');
    const oid = oidText(contentBytes(der, type));
    if (oid !== OID.extensionRequest && oid !== OID.msExtensionRequest) continue;
    // PKCS #9 defines extensionRequest as SINGLE VALUE; two could disagree about what is asked.
    if (seenRequest) throw new RangeError('more than one extensionRequest attribute');
    seenRequest = true;
    const extensions = onlyChild(der, values, 'extensionRequest');
    if (extensions.tag !== 0x30) throw new RangeError('extensionRequest is not a SEQUENCE of Extension');
    for (const extension of childrenOf(der, extensions)) {
      const fields = childrenOf(der, extension);
      const [id] = fields;
      const octets = fields.length === 3 ? fields[2] : fields[1];
      if (id?.tag !== 0x06 || octets === undefined || fields.length > 3 || (fields.length === 3 && fields[1]!.tag !== 0x01)) throw new RangeError('malformed Extension');
      const extnId = oidText(contentBytes(der, id));
      // RFC 5280 §4.2: an extension appears at most once.
      if (seen.has(extnId)) throw new RangeError(`extension ${extnId} requested twice`);
      seen.add(extnId);
      const value = extensionValue(der, octets);
      if (extnId === OID.basicConstraints) readBasicConstraints(der, value, out);
      else if (extnId === OID.keyUsage) readKeyUsage(der, value, out);
      else if (extnId === OID.subjectAltName) readSubjectAltName(der, value, out);
    }
  }
  return out;
}

/**
 * Verifies the request (`parseCsr`: proof of possession, supported key) and reads what it asks
 * for. Refused here, whoever asks and whatever identity is later decided:
 * - `cA=TRUE`, or key usage keyCertSign or cRLSign: `pki.csr_requests_ca` (an SVID is a leaf,
 *   X509-SVID §4.1, §4.3);
 * - more than one URI SAN: `pki.csr_multiple_uris` (an X.509-SVID has exactly one, §2);
 * - a URI SAN that is not a SPIFFE ID: `pki.spiffe_id_invalid`;
 * - an IP address, email, directory or other SAN type the CA never issues: `pki.csr_san_not_allowed`;
 * - a malformed extensionRequest, or one naming an extension twice: `pki.csr_invalid`.
 *
 * Returns the URI SAN as a SPIFFE ID (not yet checked against a tenant) and the DNS SANs; the
 * caller decides whether the request may have them (see `svid-signing.ts`).
 *
 * @throws PkiError `pki.csr_invalid`, `pki.key_unsupported`, `pki.csr_requests_ca`,
 *   `pki.csr_multiple_uris`, `pki.spiffe_id_invalid`, `pki.csr_san_not_allowed`
 */
export async function readSvidRequest(pem: string): Promise<SvidRequest> {
  const publicKey = await parseCsr(pem);
  // parseCsr accepted exactly one PEM block of base64, so its body is everything but the armour lines.
  const der = new Uint8Array(Buffer.from(pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, ''), 'base64'));
  let requested: RequestedExtensions;
  try {
    requested = readRequestedExtensions(der);
  } catch (err) {
    throw csrInvalid('its requested extensions (PKCS #9 extensionRequest) are malformed', err);
  }
  if (requested.ca || requested.keyCertSign || requested.crlSign) {
    const asked = [requested.ca && 'cA=TRUE', requested.keyCertSign && 'keyCertSign', requested.crlSign && 'cRLSign'].filter(Boolean);
    throw new PkiError('pki.csr_requests_ca', `The CSR asks for a CA certificate (${asked.join(', ')}); an SVID is a leaf (X509-SVID §4). Remove the basicConstraints CA:TRUE and keyCertSign/cRLSign requests`, {
      details: { requested: asked },
    });
  }
  const [uri, ...moreUris] = requested.uris;
  if (moreUris.length > 0) {
    throw new PkiError('pki.csr_multiple_uris', `The CSR asks for ${requested.uris.length} URI SANs; an X.509-SVID has exactly one, its SPIFFE ID (X509-SVID §2)`);
  }
  if (requested.otherNames.length > 0) {
    throw new PkiError('pki.csr_san_not_allowed', `The CSR asks for subject alternative names the CA never issues in an SVID: ${[...new Set(requested.otherNames)].join(', ')}`, {
      details: { types: [...new Set(requested.otherNames)] },
    });
  }
  let spiffeId: SpiffeId | undefined;
  if (uri !== undefined) {
    try {
      spiffeId = parseSpiffeId(uri).id;
    } catch (err) {
      throw new PkiError('pki.spiffe_id_invalid', `The CSR's URI SAN is not a SPIFFE ID: ${(err as Error).message}`, { cause: err });
    }
  }
  return { publicKey, ...(spiffeId === undefined ? {} : { spiffeId }), dnsNames: [...new Set(requested.dnsNames)] };
}
