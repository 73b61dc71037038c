import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashSecret, mintToken, parseToken, secretMatches } from '../../src/identity/token.js';

describe('bearer token format', () => {
  it('mints tokens that parse back to their accessor and match their stored hash', () => {
    const { token, accessor, secretHash } = mintToken();
    const parsed = parseToken(token);
    expect(parsed?.accessor).toBe(accessor);
    expect(secretMatches(parsed!.secret, secretHash)).toBe(true);
    expect(secretHash).toBe(hashSecret(parsed!.secret));
    expect(secretHash).not.toContain(parsed!.secret);
  });

  it('never stores the secret: the hash alone does not match as a secret', () => {
    const { secretHash } = mintToken();
    expect(secretMatches(secretHash, secretHash)).toBe(false);
  });

  it('rejects every secret but the right one (any single-character change)', () => {
    const { token, secretHash } = mintToken();
    const { secret } = parseToken(token)!;
    fc.assert(
      fc.property(fc.nat({ max: secret.length - 1 }), fc.constantFrom(...'ABCabc019-_'), (i, ch) => {
        fc.pre(secret[i] !== ch);
        const altered = `${secret.slice(0, i)}${ch}${secret.slice(i + 1)}`;
        expect(secretMatches(altered, secretHash)).toBe(false);
      }),
    );
  });

  it('parses nothing that is not exactly rpt.<22>.<43> base64url', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        const parsed = parseToken(s);
        if (parsed) expect(s).toMatch(/^rpt\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
      }),
    );
    const { token } = mintToken();
    for (const bad of [`${token}x`, token.slice(1), token.replace('rpt.', 'hvs.'), ` ${token}`, token.replace('.', '..')]) {
      expect(parseToken(bad), bad).toBeUndefined();
    }
  });

  it('compares against a malformed stored hash without throwing', () => {
    expect(secretMatches('x', 'not-hex')).toBe(false);
    expect(secretMatches('x', '')).toBe(false);
  });
});
