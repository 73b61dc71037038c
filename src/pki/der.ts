/**
 * A minimal DER writer (X.690 §10) for structures built in bulk. The ASN.1 libraries we use
 * concatenate buffers per element as they serialize, which makes a CRL with n entries cost O(n²)
 * (20,000 entries took over a minute); writing each element once and joining each level once is
 * linear. Only what the CRL needs is here.
 */

/** Tag and definite length (X.690 §8.1.3, short form below 128, long form above) before `content`. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  const n = body.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else {
    const octets: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) octets.unshift(v % 256);
    header = [tag, 0x80 | octets.length, ...octets];
  }
  return Buffer.concat([Uint8Array.from(header), body]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, ...items);
/** SEQUENCE of a list too long to spread into arguments (a CRL's entries). */
export const sequenceOf = (items: readonly Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items));

/** INTEGER from the hex of its minimal two's-complement content octets (a canonical serial). */
export const integerFromHex = (hex: string): Buffer => tlv(0x02, Buffer.from(hex, 'hex'));

/** INTEGER of a non-negative safe integer. */
export function integer(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative integer: ${n}`);
  const octets: number[] = [];
  for (let v = n; octets.length === 0 || v > 0; v = Math.floor(v / 256)) octets.unshift(v % 256);
  if ((octets[0] ?? 0) >= 0x80) octets.unshift(0);
  return tlv(0x02, Uint8Array.from(octets));
}

export const enumerated = (n: number): Buffer => {
  const i = integer(n);
  i[0] = 0x0a;
  return i;
};

/** OBJECT IDENTIFIER from dotted text (X.690 §8.19). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [];
    for (let v = arc; base128.length === 0 || v > 0; v = Math.floor(v / 128)) base128.unshift((v % 128) | (base128.length === 0 ? 0 : 0x80));
    out.push(...base128);
  }
  return tlv(0x06, Uint8Array.from(out));
}

export const octetString = (content: Uint8Array): Buffer => tlv(0x04, content);
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
/** BIT STRING with no unused bits. */
export const bitString = (content: Uint8Array): Buffer => tlv(0x03, Uint8Array.of(0), content);
/** `[n] EXPLICIT` (context-specific, constructed). */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * RFC 5280 §4.1.2.5 / §5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050, both in UTC
 * with seconds and no fraction.
 */
export function time(d: Date): Buffer {
  const year = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${pad(year % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${pad(year, 4)}${rest}`, 'ascii'));
}
