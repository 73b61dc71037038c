import { randomInt } from 'node:crypto';
import { SecretsError } from '../../core/errors.js';

/**
 * A generator spec: which keys of a KV secret the server regenerates at each rotation, e.g.
 * `{"keys": {"password": {"length": 32, "charset": "alnum"}}}`. Keys not named keep their value,
 * so a secret can hold a username beside the password it rotates.
 *
 * Characters come from `crypto.randomInt` (the CSPRNG, with rejection sampling, so every character
 * of the alphabet is equally likely); nothing here uses `Math.random`.
 */
export interface GeneratorSpec {
  readonly keys: Readonly<Record<string, GeneratedKey>>;
}

export interface GeneratedKey {
  readonly length: number;
  readonly charset: Charset;
}

const CHARSETS = {
  alnum: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  alpha: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
  numeric: '0123456789',
  hex: '0123456789abcdef',
  /** RFC 4648 §5 base64url alphabet. */
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
  /** Printable ASCII without space, quotes and backslash, safe inside most configuration formats. */
  symbols: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,-./:;<=>?@[]^_{|}~',
} as const;

export type Charset = keyof typeof CHARSETS;

const MIN_LENGTH = 8;
const MAX_LENGTH = 1024;
const MAX_KEYS = 32;
const DEFAULT_LENGTH = 32;

function invalid(message: string): SecretsError {
  return new SecretsError('secrets.invalid_request', `rotation_generator: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a spec from a request body (untrusted): unknown fields, unknown charsets, lengths outside
 * 8–1024 and more than 32 keys are refused rather than ignored, so a typo never yields a weaker secret.
 */
export function parseGeneratorSpec(value: unknown): GeneratorSpec {
  if (!isObject(value)) throw invalid('expected an object such as {"keys":{"password":{"length":32,"charset":"alnum"}}}');
  for (const field of Object.keys(value)) if (field !== 'keys') throw invalid(`unknown field "${field}"`);
  if (!isObject(value.keys)) throw invalid('keys: expected an object of key names');
  const entries = Object.entries(value.keys);
  if (entries.length === 0 || entries.length > MAX_KEYS) throw invalid(`keys: expected between 1 and ${MAX_KEYS} keys`);
  const keys: Record<string, GeneratedKey> = {};
  for (const [name, spec] of entries) {
    if (name === '' || name.length > 128 || name === '__proto__') throw invalid(`key name ${JSON.stringify(name.slice(0, 40))} is not allowed`);
    if (!isObject(spec)) throw invalid(`keys.${name}: expected an object`);
    for (const field of Object.keys(spec)) if (field !== 'length' && field !== 'charset') throw invalid(`keys.${name}: unknown field "${field}"`);
    const length = spec.length ?? DEFAULT_LENGTH;
    if (typeof length !== 'number' || !Number.isInteger(length) || length < MIN_LENGTH || length > MAX_LENGTH) {
      throw invalid(`keys.${name}.length: expected an integer between ${MIN_LENGTH} and ${MAX_LENGTH}`);
    }
    const charset = spec.charset ?? 'alnum';
    if (typeof charset !== 'string' || !Object.hasOwn(CHARSETS, charset)) {
      throw invalid(`keys.${name}.charset: expected one of ${Object.keys(CHARSETS).join(', ')}`);
    }
    keys[name] = { length, charset: charset as Charset };
  }
  return { keys };
}

/** A fresh value for every key of the spec. */
export function generateValues(spec: GeneratorSpec): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, { length, charset }] of Object.entries(spec.keys)) {
    const alphabet = CHARSETS[charset];
    let value = '';
    for (let i = 0; i < length; i++) value += alphabet[randomInt(alphabet.length)];
    out[name] = value;
  }
  return out;
}
