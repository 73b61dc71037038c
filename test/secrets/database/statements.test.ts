import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowsRole } from '../../../src/secrets/database/config.js';
import { generatePassword, generateUsername } from '../../../src/secrets/database/credentials.js';
import { checkTemplates, formatExpiration, parseStatements, quoteIdent, quoteLiteral, renderStatement } from '../../../src/secrets/database/statements.js';
import { ADMIN_URL } from './target-postgres.js';

/**
 * Statement templates: whatever a name or password holds, it stays one identifier or one literal.
 * Checked by unescaping (property tests) and by PostgreSQL itself, which parses the rendered text.
 */
describe('statement templates', () => {
  const noNul = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));

  it('keeps any name inside one quoted identifier, pre-quoted or bare', () => {
    fc.assert(
      fc.property(noNul, (name) => {
        const inQuotes = renderStatement('DROP ROLE "{{name}}"', { name });
        const bare = renderStatement('DROP ROLE {{name}}', { name });
        expect(inQuotes).toBe(bare);
        const ident = bare.slice('DROP ROLE '.length);
        expect(ident.startsWith('"') && ident.endsWith('"')).toBe(true);
        // Inside, every double quote is doubled: no lone quote can end the identifier early.
        expect(ident.slice(1, -1).replace(/""/g, '')).not.toContain('"');
        expect(ident.slice(1, -1).replaceAll('""', '"')).toBe(name);
      }),
    );
  });

  it('keeps any password inside one literal', () => {
    fc.assert(
      fc.property(noNul, (password) => {
        const inQuotes = renderStatement(`ALTER ROLE "x" PASSWORD '{{password}}'`, { name: 'x', password });
        const literal = inQuotes.slice(`ALTER ROLE "x" PASSWORD `.length);
        expect(literal.slice(1, -1).replace(/''/g, '')).not.toContain("'");
        expect(renderStatement('{{password}}', { name: 'x', password })).toBe(quoteLiteral(password));
      }),
    );
  });

  it('refuses unknown placeholders and NUL, and reads statement lists as Vault does', () => {
    expect(() => checkTemplates(['CREATE ROLE {{nme}}'], 'creation_statements')).toThrow(expect.objectContaining({ code: 'database.role_invalid' }));
    expect(() => quoteIdent('a\0b')).toThrow(expect.objectContaining({ code: 'database.role_invalid' }));
    expect(() => renderStatement("ALTER ROLE {{name}} VALID UNTIL '{{expiration}}'", { name: 'x' })).toThrow(expect.objectContaining({ code: 'database.role_invalid' }));
    expect(parseStatements('["a;", "b"]', 'f')).toEqual(['a;', 'b']);
    expect(parseStatements('CREATE ROLE x; GRANT y', 'f')).toEqual(['CREATE ROLE x; GRANT y']);
    expect(parseStatements(['a', ' '], 'f')).toEqual(['a']);
    expect(() => parseStatements(42, 'f')).toThrow(expect.objectContaining({ code: 'database.role_invalid' }));
    expect(formatExpiration(new Date('2026-03-04T05:06:07.890Z'))).toBe('2026-03-04 05:06:07+0000');
  });

  it('generates names safe anywhere and passwords of the documented shape', () => {
    const name = generateUsername('ali"ce; --', 'r"o', new Date(1_700_000_000_000));
    expect(name).toMatch(/^v-alice---ro-[A-Za-z0-9]{20}-1700000000$/);
    expect(generateUsername('x'.repeat(50), 'y'.repeat(50), new Date()).length).toBeLessThanOrEqual(63);
    for (let i = 0; i < 50; i++) expect(generatePassword()).toMatch(/^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)[A-Za-z0-9-]{20}$/);
  });

  it('matches allowed_roles as Vault does, with * globs', () => {
    const config = (allowedRoles: string[]) => ({ allowedRoles }) as unknown as Parameters<typeof allowsRole>[0];
    expect(allowsRole(config(['*']), 'anything')).toBe(true);
    expect(allowsRole(config(['ro', 'rw']), 'rw')).toBe(true);
    expect(allowsRole(config(['ro']), 'rox')).toBe(false);
    expect(allowsRole(config(['static-*']), 'static-app')).toBe(true);
    expect(allowsRole(config(['static-*']), 'app')).toBe(false);
    expect(allowsRole(config(['a*b*c']), 'a-b-c')).toBe(true);
    expect(allowsRole(config(['a*b*c']), 'acb')).toBe(false);
    expect(allowsRole(config([]), 'ro')).toBe(false);
  });
});

describe('statement templates in PostgreSQL', () => {
  let client: pg.Client;
  beforeAll(async () => {
    client = new pg.Client({ connectionString: ADMIN_URL });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
  });

  it('PostgreSQL reads each rendered name back as exactly that name', async () => {
    const hostile = fc.oneof(
      fc.constantFrom(`x"; DROP TABLE t; --`, `" OR 1=1 --`, `a""b`, `'; select pg_sleep(10); --`, 'ünï "cödé"', '\\"'),
      fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes('\0')),
    );
    await fc.assert(
      fc.asyncProperty(hostile, async (name) => {
        // Parsed and evaluated by the server: one identifier, cast to a name and returned.
        const r = await client.query<{ n: string }>(renderStatement('select {{password}}::text as n', { name: 'unused', password: name }));
        expect(r.rows[0]!.n).toBe(name);
        const id = await client.query<{ n: string }>(`select n from (select 1) as ${renderStatement('"{{name}}"', { name })}(n)`);
        expect(id.fields[0]!.name).toBe('n');
        const col = await client.query(`select 1 as ${renderStatement('{{name}}', { name: name.slice(0, 63) })}`);
        expect(col.fields[0]!.name).toBe(name.slice(0, 63));
      }),
      { numRuns: 40 },
    );
  });
});
