import { SecretsError } from '../../core/errors.js';

/**
 * A parser for the subset of HCL that Vault ACL policies use (Vault docs, concepts/policies):
 *
 *   policy     = { path-block }
 *   path-block = "path" string "{" { "capabilities" "=" "[" [ string { "," string } [","] ] "]" } "}"
 *
 * with `#`, `//` and block comments. Anything else — other attributes such as
 * `allowed_parameters`, unknown capabilities, a `*` anywhere but at the end of a path, a `+`
 * that is not a whole segment — is refused with its line and column, never ignored: an ACL
 * that silently meant less (or more) than its author wrote is the failure to avoid.
 */
export const ACL_CAPABILITIES = ['create', 'read', 'update', 'delete', 'list', 'patch', 'sudo', 'deny'] as const;
export type AclCapability = (typeof ACL_CAPABILITIES)[number];

export interface AclRule {
  /** The path pattern: literal segments, `+` segments, an optional trailing `*`. */
  readonly path: string;
  readonly capabilities: readonly AclCapability[];
}

export interface AclPolicy {
  readonly rules: readonly AclRule[];
}

/** Characters a path pattern may hold: enough for any Vault path, nothing that needs escaping in Cedar. */
const PATH_RE = /^[A-Za-z0-9_.\-/+*:@=~]*$/;
const MAX_RULES = 1000;

interface Token {
  readonly kind: 'ident' | 'string' | 'punct';
  readonly value: string;
  readonly line: number;
  readonly column: number;
}

function fail(line: number, column: number, message: string): never {
  throw new SecretsError('secrets.policy_invalid', `policy line ${line}, column ${column}: ${message}`);
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let col = 1;
  const advance = (n: number) => {
    for (let k = 0; k < n; k++) {
      if (text[i] === '\n') {
        line++;
        col = 1;
      } else col++;
      i++;
    }
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      advance(1);
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') advance(1);
    } else if (c === '/' && text[i + 1] === '*') {
      const [l, k] = [line, col];
      const end = text.indexOf('*/', i + 2);
      if (end === -1) fail(l, k, 'unterminated comment');
      advance(end + 2 - i);
    } else if (c === '"') {
      const [l, k] = [line, col];
      let value = '';
      advance(1);
      for (;;) {
        if (i >= text.length || text[i] === '\n') fail(l, k, 'unterminated string');
        const d = text[i]!;
        if (d === '"') break;
        if (d === '\\') {
          const e = text[i + 1];
          if (e !== '"' && e !== '\\') fail(line, col, 'unsupported escape in string');
          value += e;
          advance(2);
        } else {
          value += d;
          advance(1);
        }
      }
      advance(1);
      tokens.push({ kind: 'string', value, line: l, column: k });
    } else if (/[A-Za-z_]/.test(c)) {
      const [l, k] = [line, col];
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i))!;
      advance(m[0].length);
      tokens.push({ kind: 'ident', value: m[0], line: l, column: k });
    } else if ('{}[]=,'.includes(c)) {
      tokens.push({ kind: 'punct', value: c, line, column: col });
      advance(1);
    } else {
      fail(line, col, `unexpected character ${JSON.stringify(c)}`);
    }
  }
  return tokens;
}

export function parseAclPolicy(text: string): AclPolicy {
  const tokens = tokenize(text);
  let p = 0;
  const end = (): Token => {
    const last = tokens[tokens.length - 1];
    return { kind: 'punct', value: '<end>', line: last?.line ?? 1, column: (last?.column ?? 0) + (last?.value.length ?? 0) };
  };
  const peek = (): Token => tokens[p] ?? end();
  const expect = (kind: Token['kind'], value?: string): Token => {
    const t = peek();
    if (t.kind !== kind || (value !== undefined && t.value !== value)) {
      fail(t.line, t.column, `expected ${value === undefined ? kind : JSON.stringify(value)}, found ${t.value === '<end>' ? 'end of policy' : JSON.stringify(t.value)}`);
    }
    p++;
    return t;
  };

  const rules: AclRule[] = [];
  while (p < tokens.length) {
    const kw = expect('ident');
    if (kw.value !== 'path') fail(kw.line, kw.column, `unsupported block "${kw.value}" (only "path" blocks)`);
    const pathTok = expect('string');
    checkPattern(pathTok);
    expect('punct', '{');
    let capabilities: AclCapability[] | undefined;
    while (!(peek().kind === 'punct' && (peek().value === '}' || peek().value === '<end>'))) {
      const attr = expect('ident');
      if (attr.value !== 'capabilities') fail(attr.line, attr.column, `unsupported attribute "${attr.value}" (only "capabilities")`);
      if (capabilities !== undefined) fail(attr.line, attr.column, 'capabilities given twice');
      expect('punct', '=');
      expect('punct', '[');
      capabilities = [];
      while (!(peek().kind === 'punct' && peek().value === ']')) {
        const cap = expect('string');
        if (!(ACL_CAPABILITIES as readonly string[]).includes(cap.value)) fail(cap.line, cap.column, `unknown capability "${cap.value}"`);
        if (!capabilities.includes(cap.value as AclCapability)) capabilities.push(cap.value as AclCapability);
        if (peek().kind === 'punct' && peek().value === ',') p++;
        else break;
      }
      expect('punct', ']');
    }
    expect('punct', '}');
    if (capabilities === undefined) fail(pathTok.line, pathTok.column, 'path block without capabilities');
    if (rules.length >= MAX_RULES) fail(pathTok.line, pathTok.column, `more than ${MAX_RULES} path blocks`);
    // Vault's parsePaths drops a leading `/`: request paths never start with one.
    rules.push({ path: pathTok.value.startsWith('/') ? pathTok.value.slice(1) : pathTok.value, capabilities });
  }
  return { rules };
}

function checkPattern(t: Token): void {
  const path = t.value;
  if (!PATH_RE.test(path)) fail(t.line, t.column, 'the path holds characters outside A-Z a-z 0-9 _ . - / + * : @ = ~');
  const star = path.indexOf('*');
  if (star !== -1 && star !== path.length - 1) fail(t.line, t.column + 1 + star, '"*" is only allowed at the end of a path');
  const segments = path.split('/');
  segments.forEach((s, i) => {
    if (s.includes('+') && s !== '+') fail(t.line, t.column, '"+" must be a whole path segment');
    // The translation addresses segments 0–31 (src/authz/vault-path.ts).
    if (s === '+' && i >= 32) fail(t.line, t.column, '"+" is only supported in the first 32 segments');
  });
}
