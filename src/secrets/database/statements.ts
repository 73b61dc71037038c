import { DatabaseError } from '../../core/errors.js';

/**
 * Vault's statement templates for the PostgreSQL plugin: `{{name}}` (alias `{{username}}`),
 * `{{password}}` and `{{expiration}}`
 * (https://developer.hashicorp.com/vault/docs/secrets/databases/postgresql). Values are never
 * pasted raw: identifiers and literals are quoted as PostgreSQL quotes them (`quote_ident`,
 * `quote_literal`, PostgreSQL manual §4.1.1 and §4.1.2.1), so a role name or username holding a
 * quote cannot end the identifier and inject SQL.
 *
 * Vault's documented templates already carry the quotes (`"{{name}}"`, `'{{password}}'`): there
 * the value is escaped to stay inside them. A bare placeholder gets the quotes as well.
 */
export interface StatementValues {
  readonly name: string;
  readonly password?: string;
  readonly expiration?: string;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;
const KNOWN = new Set(['name', 'username', 'password', 'expiration']);

/** Throws `database.role_invalid` when a statement uses a placeholder this engine does not fill. */
export function checkTemplates(statements: readonly string[], field: string): void {
  for (const s of statements) {
    for (const m of s.matchAll(PLACEHOLDER)) {
      if (!KNOWN.has(m[1]!)) throw new DatabaseError('database.role_invalid', `${field} uses the unknown placeholder {{${m[1]}}}`);
    }
  }
}

export function renderStatement(statement: string, values: StatementValues): string {
  return statement.replace(PLACEHOLDER, (whole, key: string, offset: number) => {
    const before = statement[offset - 1];
    const after = statement[offset + whole.length];
    const value = key === 'name' || key === 'username' ? values.name : key === 'password' ? values.password : key === 'expiration' ? values.expiration : undefined;
    if (value === undefined) throw new DatabaseError('database.role_invalid', `the statement needs {{${key}}}, which this operation does not provide`);
    const identifier = key === 'name' || key === 'username';
    if (identifier && before === '"' && after === '"') return value.replaceAll('"', '""');
    if (!identifier && before === "'" && after === "'") return value.replaceAll("'", "''");
    return identifier ? quoteIdent(value) : quoteLiteral(value);
  });
}

/** PostgreSQL `quote_ident`: always quoted, inner double quotes doubled. NUL is refused. */
export function quoteIdent(value: string): string {
  if (value.includes('\0')) throw new DatabaseError('database.role_invalid', 'an identifier may not contain NUL');
  return `"${value.replaceAll('"', '""')}"`;
}

/** PostgreSQL `quote_literal` for `standard_conforming_strings = on` (the default since 9.1). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new DatabaseError('database.role_invalid', 'a literal may not contain NUL');
  return value.includes('\\') ? `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'` : `'${value.replaceAll("'", "''")}'`;
}

/**
 * Vault accepts a statement list as a JSON array or one string; a string that is itself a JSON
 * array of strings is read as that array.
 */
export function parseStatements(value: unknown, field: string): string[] {
  if (value === undefined || value === null || value === '') return [];
  if (Array.isArray(value)) {
    if (!value.every((v) => typeof v === 'string')) throw new DatabaseError('database.role_invalid', `${field} must be a list of strings`);
    return value.filter((v) => v.trim() !== '');
  }
  if (typeof value !== 'string') throw new DatabaseError('database.role_invalid', `${field} must be a string or a list of strings`);
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (Array.isArray(parsed)) return parseStatements(parsed, field);
    } catch {
      // not JSON: one SQL string that happens to start with a bracket
    }
  }
  return [value];
}

/** `{{expiration}}` as Vault writes it for PostgreSQL: `2006-01-02 15:04:05+0000`, in UTC. */
export function formatExpiration(at: Date): string {
  return `${at.toISOString().slice(0, 19).replace('T', ' ')}+0000`;
}
