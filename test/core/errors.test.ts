import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, RampartError, TokenError } from '../../src/core/errors.js';

/** docs/errors.md is the operator-facing list of codes; it must match the code table exactly. */
function documentedCodes(): Map<string, number> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of text.matchAll(/^\| `([a-z_]+\.[a-z_]+)` \| (\d{3}) \|/gm)) {
    expect(rows.has(m[1]!), `${m[1]} is documented twice`).toBe(false);
    rows.set(m[1]!, Number(m[2]));
  }
  return rows;
}

describe('error code table', () => {
  it('documents every code with its status, and nothing else', () => {
    const documented = documentedCodes();
    const table = new Map(Object.entries(ERROR_CODES).map(([code, info]) => [code, info.status]));
    expect([...documented.keys()].sort()).toEqual([...table.keys()].sort());
    for (const [code, status] of table) expect(documented.get(code), code).toBe(status);
  });

  it('gives every code a 4xx or 5xx status and a title', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(info.status, code).toBeGreaterThanOrEqual(400);
      expect(info.status, code).toBeLessThan(600);
      expect(info.title.length, code).toBeGreaterThan(0);
    }
  });

  it('carries code, status and cause on the error', () => {
    const cause = new Error('inner');
    const err = new TokenError('token.ttl_invalid', 'bad ttl', { cause });
    expect(err).toBeInstanceOf(RampartError);
    expect(err.code).toBe('token.ttl_invalid');
    expect(err.status).toBe(400);
    expect(err.cause).toBe(cause);
    expect(err.name).toBe('TokenError');
  });
});
