import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PathStart, childKeys, prefixEnd, readChildKeys } from '../../src/secrets/list-keys.js';
import { parseWrapTtl } from '../../src/secrets/wrapping/wrapping.js';
import { SqlKv1Store } from '../../src/store/kv1-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * KV v1 listing (src/secrets/kv1/engine.ts over src/secrets/list-keys.ts and the store's keyset
 * pages, src/store/kv1-store.ts) and the wrap TTL header (src/secrets/wrapping/).
 */

/** Code point order, as SQLite's BINARY and PostgreSQL's "C" collations compare UTF-8. */
const byCodePoint = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** An in-memory store page reader with the store's contract. */
function memoryReader(paths: readonly string[], prefix: string, reads: number[] = []) {
  const end = prefixEnd(prefix);
  const under = paths.filter((p) => p.startsWith(prefix)).sort(byCodePoint);
  if (end !== undefined) expect(under.every((p) => byCodePoint(p, end) < 0)).toBe(true);
  return async (start: PathStart, limit: number): Promise<string[]> => {
    reads.push(limit);
    return under.filter((p) => (start.after === undefined || byCodePoint(p, start.after) > 0) && (start.from === undefined || byCodePoint(p, start.from) >= 0)).slice(0, limit);
  };
}

describe('KV v1 listing', () => {
  it('names immediate children and folders, paged', async () => {
    const paths = ['app/a', 'app/b/x', 'app/b/y', 'app/c', 'other/z'];
    expect(childKeys(paths.filter((p) => p.startsWith('app/')), 'app/', undefined, undefined)).toEqual(['a', 'b/', 'c']);
    expect(childKeys(paths, '', undefined, undefined)).toEqual(['app/', 'other/']);
    expect(childKeys(paths.filter((p) => p.startsWith('app/')), 'app/', 'a', 1)).toEqual(['b/']);
    expect(await readChildKeys(memoryReader(paths, 'app/'), 'app/', undefined, undefined)).toEqual(['a', 'b/', 'c']);
    expect(await readChildKeys(memoryReader(paths, 'app/'), 'app/', 'b/', undefined)).toEqual(['c']);
    expect(await readChildKeys(memoryReader(paths, ''), '', 'app', undefined)).toEqual(['app/', 'other/']);
  });

  it('bounds a prefix by its last code point, astral characters included', () => {
    expect(prefixEnd('')).toBeUndefined();
    expect(prefixEnd('a/')).toBe('a0');
    expect(prefixEnd('🔑')).toBe('🔒');
    expect(prefixEnd('x\u{10ffff}')).toBe('y');
    expect(prefixEnd('\u{10ffff}')).toBeUndefined();
    expect(prefixEnd('\ud7ff')).toBe('\ue000');
    const text = fc.string({ unit: fc.constantFrom('a', '/', '0', '\ufffd', '😀', '\u{10ffff}'), maxLength: 6 });
    fc.assert(
      fc.property(text, text, (prefix, other) => {
        const end = prefixEnd(prefix);
        // Exactly the strings starting with the prefix lie in [prefix, end).
        const inRange = byCodePoint(other, prefix) >= 0 && (end === undefined || byCodePoint(other, end) < 0);
        expect(inRange).toBe(other.startsWith(prefix));
      }),
    );
  });

  it('steps over a folder with one read, however many paths it holds', async () => {
    const paths = ['big/a', ...Array.from({ length: 5_000 }, (_, i) => `big/b/${String(i).padStart(4, '0')}`), 'big/c'];
    const reads: number[] = [];
    expect(await readChildKeys(memoryReader(paths, 'big/', reads), 'big/', undefined, undefined)).toEqual(['a', 'b/', 'c']);
    expect(reads.length).toBeLessThanOrEqual(2);
  });

  it('pages through exactly the full list, in code point order (property)', async () => {
    const segment = fc.stringMatching(/^[a-c]{1,2}$/).chain((s) => fc.constantFrom(s, `${s}😀`, `\ufffd${s}`, `${s}-`));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'))), fc.integer({ min: 1, max: 5 }), async (paths, limit) => {
        const read = memoryReader(paths, '');
        const full = childKeys(paths, '', undefined, undefined).sort(byCodePoint);
        expect(await readChildKeys(read, '', undefined, undefined)).toEqual(full);
        const paged: string[] = [];
        for (let page = await readChildKeys(read, '', undefined, limit); page.length > 0; page = await readChildKeys(read, '', page.at(-1), limit)) {
          expect(page.length).toBeLessThanOrEqual(limit);
          paged.push(...page);
        }
        expect(paged).toEqual(full);
      }),
    );
  });
});

describe.each(TEST_DATABASES)('KV v1 store paths on $name', (target) => {
  const database = freshDatabase(target);
  const at = '2026-01-01T00:00:00.000Z';
  const paths = ['🔑/a', '🔑/b/x', '🔑/b/y', '🔑/😀', '🔑/\ufffd', '🔑/c', '🔑0', '🔑x/z', '🔒/q', 'k/🔑/v', 'a_b/x', 'A_b/w', 'a%/z'];

  it('selects exactly the paths under a prefix, astral characters and wildcards literal', async () => {
    const { db } = database();
    await db.insertInto('tenants').values({ name: 'acme', trust_domain: 'acme.rampart.local', created_at: at }).execute();
    const kv = new SqlKv1Store(db);
    for (const path of paths) await kv.put({ tenant: 'acme', mount: 'kv_1', path, ciphertext: `c:${path}`, createdAt: at, updatedAt: at });
    await kv.put({ tenant: 'acme', mount: 'kv_2', path: '🔑/elsewhere', ciphertext: 'c', createdAt: at, updatedAt: at });
    // Code point order: U+FFFD sorts before U+1F600 (UTF-16 code units would put it after).
    expect(await kv.paths('acme', 'kv_1', '🔑/')).toEqual(['🔑/a', '🔑/b/x', '🔑/b/y', '🔑/c', '🔑/\ufffd', '🔑/😀']);
    expect(await kv.paths('acme', 'kv_1', 'k/🔑/')).toEqual(['k/🔑/v']);
    expect(await kv.paths('acme', 'kv_1', 'a_b/')).toEqual(['a_b/x']);
    expect(await kv.paths('acme', 'kv_1', 'a%/')).toEqual(['a%/z']);
    expect(await kv.paths('acme', 'kv_1', '')).toEqual([...paths].sort(byCodePoint));
    expect(await kv.paths('acme', 'kv_1', '🔑/', { after: '🔑/b/x', limit: 2 })).toEqual(['🔑/b/y', '🔑/c']);
    expect(await kv.paths('acme', 'kv_1', '🔑/', { from: prefixEnd('🔑/b/'), limit: 10 })).toEqual(['🔑/c', '🔑/\ufffd', '🔑/😀']);
  });

  it('lists children from keyset pages, the same whatever the page size', async () => {
    const kv = new SqlKv1Store(database().db);
    const read = (start: PathStart, limit: number) => kv.paths('acme', 'kv_1', '🔑/', { ...start, limit });
    const full = await readChildKeys(read, '🔑/', undefined, undefined);
    expect(full).toEqual(['a', 'b/', 'c', '\ufffd', '😀']);
    const paged: string[] = [];
    for (let page = await readChildKeys(read, '🔑/', undefined, 2); page.length > 0; page = await readChildKeys(read, '🔑/', page.at(-1), 2)) paged.push(...page);
    expect(paged).toEqual(full);
    expect(await readChildKeys((start, limit) => kv.paths('acme', 'kv_1', '', { ...start, limit }), '', undefined, undefined)).toEqual(['A_b/', 'a%/', 'a_b/', 'k/', '🔑/', '🔑0', '🔑x/', '🔒/']);
  });
});

describe('X-Vault-Wrap-TTL', () => {
  it('reads durations and seconds, and refuses anything else', () => {
    expect(parseWrapTtl(undefined)).toBeUndefined();
    expect(parseWrapTtl('0')).toBeUndefined();
    expect(parseWrapTtl('5m')).toBe(300);
    expect(parseWrapTtl('90')).toBe(90);
    for (const bad of ['soon', '-1', '500ms', '769h', '1h x']) expect(() => parseWrapTtl(bad), bad).toThrow(expect.objectContaining({ code: 'secrets.invalid_request' }));
  });
});
