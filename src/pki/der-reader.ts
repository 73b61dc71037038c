/**
 * A minimal DER reader (X.690 §10) for the few structures read on the issuance hot path (a
 * PKCS #10 request). Input comes from the network: every length is checked against the buffer,
 * only definite lengths of at most four octets are accepted, and any violation is a RangeError
 * for the caller to turn into its own coded error.
 */

export interface Tlv {
  readonly tag: number;
  /** Offset of the tag octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the last content octet. */
  readonly end: number;
}

/** The element starting at `offset`; single-octet tags only (no tag number above 30 is read here). */
export function readTlv(buf: Uint8Array, offset: number): Tlv {
  const tag = buf[offset];
  const first = buf[offset + 1];
  if (tag === undefined || first === undefined) throw new RangeError('truncated DER element');
  if ((tag & 0x1f) === 0x1f) throw new RangeError('multi-octet DER tags are not supported');
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const octets = first & 0x7f;
    if (octets === 0 || octets > 4) throw new RangeError('indefinite or oversized DER length');
    contentStart = offset + 2 + octets;
    if (contentStart > buf.length) throw new RangeError('truncated DER length');
    length = 0;
    for (let i = offset + 2; i < contentStart; i++) length = length * 256 + (buf[i] ?? 0);
    // X.690 §10.1: the definite form uses the minimum number of octets.
    if (length < 0x80 || (buf[offset + 2] ?? 0) === 0) throw new RangeError('non-minimal DER length');
  }
  const end = contentStart + length;
  if (end > buf.length) throw new RangeError('DER element runs past the end of its container');
  return { tag, start: offset, contentStart, end };
}

/** The elements directly inside a constructed element, which must fill it exactly. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  if ((parent.tag & 0x20) === 0) throw new RangeError('not a constructed DER element');
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(buf, at);
    if (child.end > parent.end) throw new RangeError('DER child runs past its parent');
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The whole element, tag and length included. */
export const elementBytes = (buf: Uint8Array, t: Tlv): Uint8Array => buf.subarray(t.start, t.end);
export const contentBytes = (buf: Uint8Array, t: Tlv): Uint8Array => buf.subarray(t.contentStart, t.end);

/** Dotted text of an OBJECT IDENTIFIER's content octets (X.690 §8.19). */
export function oidText(content: Uint8Array): string {
  if (content.length === 0 || (content[content.length - 1] ?? 0) & 0x80) throw new RangeError('malformed OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (const octet of content) {
    if (value === 0 && octet === 0x80) throw new RangeError('non-minimal OBJECT IDENTIFIER arc');
    value = value * 128 + (octet & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new RangeError('OBJECT IDENTIFIER arc too large');
    if ((octet & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  const [head = 0, ...rest] = arcs;
  const first = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [first, head - 40 * first, ...rest].join('.');
}
