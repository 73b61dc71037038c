import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateValues, parseGeneratorSpec } from '../../src/secrets/rotation/generator.js';

const ALPHABETS: Record<string, RegExp> = {
  alnum: /^[A-Za-z0-9]*$/,
  alpha: /^[A-Za-z]*$/,
  numeric: /^[0-9]*$/,
  hex: /^[0-9a-f]*$/,
  base64url: /^[A-Za-z0-9_-]*$/,
  symbols: /^[A-Za-z0-9!#$%&()*+,\-./:;<=>?@[\]^_{|}~]*$/,
};

describe('rotation generator', () => {
  it('generates exactly the requested length from the requested alphabet, for any valid spec', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => k !== '__proto__'), fc.record({ length: fc.integer({ min: 8, max: 200 }), charset: fc.constantFrom(...Object.keys(ALPHABETS)) }), { minKeys: 1, maxKeys: 8 }),
        (keys) => {
          const spec = parseGeneratorSpec({ keys });
          const values = generateValues(spec);
          expect(Object.keys(values).sort()).toEqual(Object.keys(keys).sort());
          for (const [name, { length, charset }] of Object.entries(keys)) {
            expect(values[name]).toHaveLength(length);
            expect(values[name]).toMatch(ALPHABETS[charset]!);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('defaults to 32 alphanumeric characters and never repeats a value', () => {
    const spec = parseGeneratorSpec({ keys: { password: {} } });
    expect(spec).toEqual({ keys: { password: { length: 32, charset: 'alnum' } } });
    const seen = new Set(Array.from({ length: 1000 }, () => generateValues(spec).password));
    expect(seen.size).toBe(1000);
  });

  it('uses every character of the alphabet (no modulo-biased or truncated range)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 200; i++) for (const c of generateValues(parseGeneratorSpec({ keys: { k: { length: 1024, charset: 'hex' } } })).k!) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect([...counts.keys()].sort().join('')).toBe('0123456789abcdef');
    // 204,800 draws over 16 symbols: each expected 12,800; a biased generator would be far off.
    for (const n of counts.values()) expect(Math.abs(n - 12_800)).toBeLessThan(800);
  });

  it.each([
    [null, 'expected an object'],
    [[], 'expected an object'],
    [{ keys: { password: {} }, extra: 1 }, 'unknown field "extra"'],
    [{ keys: [] }, 'keys: expected an object'],
    [{ keys: { password: { length: 7 } } }, 'length'],
    [{ keys: { password: { length: 1025 } } }, 'length'],
    [{ keys: { password: { length: 32.5 } } }, 'length'],
    [{ keys: { password: { length: '32' } } }, 'length'],
    [{ keys: { password: { charset: 'toString' } } }, 'charset'],
    [{ keys: { password: { charset: 'alnum', entropy: 128 } } }, 'unknown field "entropy"'],
    [{ keys: { password: 'alnum' } }, 'expected an object'],
    [{ keys: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, {}])) }, 'between 1 and 32'],
    [{ keys: { ['x'.repeat(129)]: {} } }, 'not allowed'],
  ])('refuses %j', (value, message) => {
    expect(() => parseGeneratorSpec(value)).toThrow(expect.objectContaining({ code: 'secrets.invalid_request', message: expect.stringContaining(message) }));
  });
});
