import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from './duration.js';

/**
 * Server configuration, resolved from three layers: command-line flags win over environment
 * variables, which win over the YAML config file (`--config rampart.yaml`). The file uses the
 * flag names in snake_case (`data_dir`, `listen`, `database_url`, `body_limit`, `advertise_addr`, `pki_max_ttl`).
 */
export interface ServerConfig {
  readonly dataDir: string;
  readonly listen: { readonly host: string; readonly port: number };
  /** A `postgres://` URL selects PostgreSQL; undefined means SQLite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Largest accepted request body, in bytes. */
  readonly bodyLimit: number;
  readonly logLevel: string;
  /**
   * The base URL clients reach this server at, without a trailing slash. Issued SVIDs point their
   * CRL distribution point and OCSP responder here, so it must be the externally reachable
   * address (a load balancer's name), not necessarily the listen address.
   */
  readonly advertiseAddr: string;
  /** Longest certificate TTL `POST /v1/pki/sign` grants, in milliseconds. */
  readonly pkiMaxTtlMs: number;
}

export interface ServerFlags {
  config?: string | undefined;
  dataDir?: string | undefined;
  listen?: string | undefined;
  databaseUrl?: string | undefined;
  bodyLimit?: string | undefined;
  logLevel?: string | undefined;
  advertiseAddr?: string | undefined;
  pkiMaxTtl?: string | undefined;
}

const FILE_KEYS = {
  data_dir: 'dataDir',
  listen: 'listen',
  database_url: 'databaseUrl',
  body_limit: 'bodyLimit',
  log_level: 'logLevel',
  advertise_addr: 'advertiseAddr',
  pki_max_ttl: 'pkiMaxTtl',
} as const satisfies Record<string, keyof ServerFlags>;

const ENV_KEYS = {
  RAMPART_DATA_DIR: 'dataDir',
  RAMPART_LISTEN: 'listen',
  RAMPART_DATABASE_URL: 'databaseUrl',
  RAMPART_BODY_LIMIT: 'bodyLimit',
  RAMPART_LOG_LEVEL: 'logLevel',
  RAMPART_ADVERTISE_ADDR: 'advertiseAddr',
  RAMPART_PKI_MAX_TTL: 'pkiMaxTtl',
} as const satisfies Record<string, keyof ServerFlags>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function resolveServerConfig(
  flags: ServerFlags,
  env: Record<string, string | undefined> = process.env,
  cwd: string = process.cwd(),
): ServerConfig {
  const fromFile: ServerFlags = flags.config ? readConfigFile(resolve(cwd, flags.config)) : {};
  const fromEnv: ServerFlags = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  const pick = (key: keyof ServerFlags): string | undefined => flags[key] ?? fromEnv[key] ?? fromFile[key];

  const dataDirRaw = pick('dataDir') ?? './data';
  const databaseUrl = pick('databaseUrl');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`database URL must start with postgres:// (got scheme of "${redactUrl(databaseUrl)}")`);
  }
  const listen = parseListen(pick('listen') ?? '127.0.0.1:8443');
  return {
    dataDir: isAbsolute(dataDirRaw) ? dataDirRaw : resolve(cwd, dataDirRaw),
    listen,
    databaseUrl,
    bodyLimit: parseBodyLimit(pick('bodyLimit') ?? String(1024 * 1024)),
    logLevel: pick('logLevel') ?? 'info',
    advertiseAddr: parseAdvertiseAddr(pick('advertiseAddr') ?? `https://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`),
    pkiMaxTtlMs: parseMaxTtl(pick('pkiMaxTtl') ?? '24h'),
  };
}

/**
 * An absolute http(s) URL with no query or fragment; a trailing slash is dropped so that paths
 * can be appended. It ends up inside signed certificates, so a typo is refused at start-up.
 */
function parseAdvertiseAddr(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`advertise address must be an absolute URL such as https://rampart.example:8443 (got "${value}")`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigError(`advertise address must be an http(s) URL without credentials, query or fragment (got "${value}")`);
  }
  return url.toString().replace(/\/+$/, '');
}

function parseMaxTtl(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 60_000) throw new ConfigError(`PKI max TTL must be a duration of at least 1m, e.g. "24h" (got "${value}")`);
  return ms;
}

function readConfigFile(path: string): ServerFlags {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path} must be a YAML mapping`);
  const out: ServerFlags = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const target = (FILE_KEYS as Record<string, keyof ServerFlags>)[key];
    if (!target) throw new ConfigError(`config file ${path}: unknown key "${key}" (known: ${Object.keys(FILE_KEYS).join(', ')})`);
    if (typeof value !== 'string' && typeof value !== 'number') throw new ConfigError(`config file ${path}: "${key}" must be a string or number`);
    out[target] = String(value);
  }
  return out;
}

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) throw new ConfigError(`listen address must be host:port (got "${value}")`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function parseBodyLimit(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1024) throw new ConfigError(`body limit must be an integer number of bytes >= 1024 (got "${value}")`);
  return n;
}

/** Keeps a database URL's password out of error messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
