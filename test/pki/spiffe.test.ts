import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PkiError } from '../../src/core/errors.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { isSpiffeId, MAX_SPIFFE_ID_LENGTH, parseSpiffeId, spiffeIdOf } from '../../src/pki/spiffe.js';

function expectInvalid(input: string, reason: RegExp): void {
  let thrown: unknown;
  try {
    parseSpiffeId(input);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${JSON.stringify(input)} to be rejected`).toBeInstanceOf(PkiError);
  expect((thrown as PkiError).code).toBe('pki.spiffe_id_invalid');
  expect((thrown as PkiError).message).toMatch(reason);
}

describe('parseSpiffeId against the SPIFFE-ID spec', () => {
  // The examples of §2 and §2.2, plus the edge cases the rules of §2.1–§2.3 allow.
  it.each([
    ['spiffe://trust-domain-name/path', 'trust-domain-name', '/path'],
    ['spiffe://staging.example.com/payments/mysql', 'staging.example.com', '/payments/mysql'],
    ['spiffe://staging.example.com/payments/web-fe', 'staging.example.com', '/payments/web-fe'],
    ['spiffe://k8s-west.example.com/ns/staging/sa/default', 'k8s-west.example.com', '/ns/staging/sa/default'],
    ['spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453', 'example.com', '/9eebccd2-12bf-40a6-b262-65fe0487d453'],
    ['spiffe://trust_domain_name.example.com', 'trust_domain_name.example.com', ''],
    ['spiffe://192.168.1.1/workload', '192.168.1.1', '/workload'],
    ['spiffe://example.org/Case.Sensitive_Path-1', 'example.org', '/Case.Sensitive_Path-1'],
    ['spiffe://example.org/.../..a/a..', 'example.org', '/.../..a/a..'],
    ['spiffe://a/b', 'a', '/b'],
  ])('accepts %s', (input, trustDomain, path) => {
    const parsed = parseSpiffeId(input);
    expect(parsed).toEqual({ id: input, trustDomain, path });
    expect(isSpiffeId(input)).toBe(true);
  });

  it.each([
    ['', /empty/],
    ['example.org/path', /scheme/],
    ['http://example.org/path', /scheme/],
    ['spiffe:/example.org/path', /scheme/],
    ['spiffe:example.org', /scheme/],
    ['SPIFFE://example.org/path', /scheme/],
    ['spiffe://', /trust domain is missing/],
    ['spiffe:///path', /trust domain is missing/],
    ['spiffe://Example.org/path', /lowercase/],
    ['spiffe://user@example.org/path', /userinfo/],
    ['spiffe://user:pass@example.org/path', /userinfo/],
    ['spiffe://example.org:8080/path', /port/],
    ['spiffe://example.org:/path', /port/],
    ['spiffe://[::1]/path', /IPv6/],
    ['spiffe://exa%41mple.org/path', /percent-encoded/],
    ['spiffe://example.org?query', /query/],
    ['spiffe://example.org#fragment', /fragment/],
    ['spiffe://example.org/path?query', /query/],
    ['spiffe://example.org/path#fragment', /fragment/],
    ['spiffe://example.org/pa%20th', /percent-encoded/],
    ['spiffe://example.org/', /trailing/],
    ['spiffe://example.org/path/', /trailing/],
    ['spiffe://example.org//path', /empty path segment/],
    ['spiffe://example.org/a//b', /empty path segment/],
    ['spiffe://example.org/./path', /"\." and "\.\."/],
    ['spiffe://example.org/../path', /"\." and "\.\."/],
    ['spiffe://example.org/path/.', /"\." and "\.\."/],
    ['spiffe://example.org/path/..', /"\." and "\.\."/],
    ['spiffe://example.org/pa th', /path segment characters/],
    ['spiffe://example.org/p\u00e4th', /path segment characters/],
    ['spiffe://ex\u00e4mple.org/path', /trust domain characters/],
    ['spiffe://exa mple.org/path', /trust domain characters/],
    ['spiffe://example.org/pa+th', /path segment characters/],
    ['spiffe://example.org\\path', /trust domain characters/],
  ])('rejects %j', (input, reason) => {
    expectInvalid(input, reason);
    expect(isSpiffeId(input)).toBe(false);
  });

  it('accepts exactly 2048 characters and rejects 2049 (§2.3)', () => {
    const prefix = 'spiffe://example.org/';
    const atLimit = prefix + 'a'.repeat(MAX_SPIFFE_ID_LENGTH - prefix.length);
    expect(atLimit).toHaveLength(2048);
    expect(parseSpiffeId(atLimit).id).toBe(atLimit);
    expectInvalid(`${atLimit}a`, /longer than 2048/);
  });

  it('limits the trust domain to 255 characters (§2.3)', () => {
    expect(parseSpiffeId(`spiffe://${'a'.repeat(255)}/x`).trustDomain).toHaveLength(255);
    expectInvalid(`spiffe://${'a'.repeat(256)}/x`, /longer than 255/);
  });

  it('rejects non-strings without crashing', () => {
    expect(() => parseSpiffeId(undefined as unknown as string)).toThrow(PkiError);
  });
});

const TRUST_DOMAIN_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789.-_';
const SEGMENT_CHARS = `${TRUST_DOMAIN_CHARS}ABCDEFGHIJKLMNOPQRSTUVWXYZ`;

const trustDomainArb = fc.string({ unit: fc.constantFrom(...TRUST_DOMAIN_CHARS), minLength: 1, maxLength: 60 });
const segmentArb = fc
  .string({ unit: fc.constantFrom(...SEGMENT_CHARS), minLength: 1, maxLength: 20 })
  .filter((s) => s !== '.' && s !== '..');
const pathArb = fc.array(segmentArb, { maxLength: 6 }).map((segments) => segments.map((s) => `/${s}`).join(''));
const forbiddenCharArb = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 1 })
  .filter((c) => !SEGMENT_CHARS.includes(c) && c !== '/');

describe('parseSpiffeId properties', () => {
  it('round-trips every valid trust domain and path', () => {
    fc.assert(
      fc.property(trustDomainArb, pathArb, (trustDomain, path) => {
        const id = `spiffe://${trustDomain}${path}`;
        expect(parseSpiffeId(id)).toEqual({ id, trustDomain, path });
      }),
    );
  });

  it('rejects a forbidden character anywhere in a path segment', () => {
    fc.assert(
      fc.property(trustDomainArb, pathArb, segmentArb, forbiddenCharArb, fc.nat(), (td, path, segment, bad, at) => {
        const i = at % (segment.length + 1);
        const id = `spiffe://${td}${path}/${segment.slice(0, i)}${bad}${segment.slice(i)}`;
        expect(() => parseSpiffeId(id)).toThrow(PkiError);
      }),
    );
  });

  it('rejects a forbidden character or an uppercase letter anywhere in the trust domain', () => {
    const badTdChar = fc.oneof(forbiddenCharArb, fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'));
    fc.assert(
      fc.property(trustDomainArb, badTdChar, fc.nat(), pathArb, (td, bad, at, path) => {
        const i = at % (td.length + 1);
        const id = `spiffe://${td.slice(0, i)}${bad}${td.slice(i)}${path}`;
        expect(() => parseSpiffeId(id)).toThrow(PkiError);
      }),
    );
  });
});

describe('spiffeIdOf per X509-SVID §2 and §5.2', () => {
  async function certWith(names: x509.JsonGeneralNames, ca = false): Promise<x509.X509Certificate> {
    const keys = await generateKeyPair();
    return x509.X509CertificateGenerator.createSelfSigned({
      name: [{ CN: ['test'] }],
      keys,
      notBefore: new Date(Date.UTC(2026, 0, 1)),
      notAfter: new Date(Date.UTC(2026, 0, 2)),
      extensions: [new x509.BasicConstraintsExtension(ca, undefined, true), new x509.SubjectAlternativeNameExtension(names)],
    });
  }

  it('returns the one URI SAN, ignoring DNS and IP SANs', async () => {
    const cert = await certWith([
      { type: 'dns', value: 'a.example.org' },
      { type: 'url', value: 'spiffe://example.org/a' },
      { type: 'ip', value: '10.0.0.1' },
    ]);
    expect(spiffeIdOf(cert)).toBe('spiffe://example.org/a');
  });

  it.each<[string, x509.JsonGeneralNames, boolean, RegExp]>([
    ['no URI SAN', [{ type: 'dns', value: 'a.example.org' }], false, /0 URI SANs/],
    [
      'two URI SANs',
      [
        { type: 'url', value: 'spiffe://example.org/a' },
        { type: 'url', value: 'spiffe://example.org/b' },
      ],
      false,
      /2 URI SANs/,
    ],
    ['a non-SPIFFE URI', [{ type: 'url', value: 'https://example.org/a' }], false, /scheme/],
    ['an invalid SPIFFE ID', [{ type: 'url', value: 'spiffe://example.org/a/../b' }], false, /"\." and "\.\."/],
    ['a leaf with a trust-domain-only ID', [{ type: 'url', value: 'spiffe://example.org' }], false, /must have a path/],
    ['a CA with a path', [{ type: 'url', value: 'spiffe://example.org/a' }], true, /must not have a path/],
  ])('rejects %s', async (_name, names, ca, reason) => {
    const cert = await certWith(names, ca);
    expect(() => spiffeIdOf(cert)).toThrow(PkiError);
    expect(() => spiffeIdOf(cert)).toThrow(reason);
  });

  it('rejects a certificate without a SAN extension', async () => {
    const keys = await generateKeyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: [{ CN: ['test'] }],
      keys,
      notBefore: new Date(Date.UTC(2026, 0, 1)),
      notAfter: new Date(Date.UTC(2026, 0, 2)),
    });
    expect(() => spiffeIdOf(cert)).toThrow(/exactly one subjectAltName/);
  });

  it('accepts a trust-domain ID on a signing certificate (§3.2)', async () => {
    expect(spiffeIdOf(await certWith([{ type: 'url', value: 'spiffe://example.org' }], true))).toBe('spiffe://example.org');
  });
});
