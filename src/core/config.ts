import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from './duration.js';

/**
 * Server configuration, resolved from three layers: command-line flags win over environment
 * variables, which win over the YAML config file (`--config rampart.yaml`). The file uses the
 * flag names in snake_case (`data_dir`, `listen`, `database_url`, `body_limit`, `advertise_addr`, `pki_max_ttl`,
 * `audit_retention`).
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
  /**
   * Audit payloads recorded longer ago than this (milliseconds) may be pruned (src/audit/pruner.ts;
   * leaf hashes stay). Undefined: keep every payload forever (the default).
   */
  readonly auditRetentionMs: number | undefined;
  /**
   * The audit log's origin (its checkpoints' first line and note key name), used when the log is
   * created; undefined keeps `rampart.local/audit/<random>`. A log keeps its origin for life: a
   * different value at a later start is refused (src/audit/checkpointer.ts).
   */
  readonly auditOrigin?: string | undefined;
  /** Where the audit log is streamed (config file key `audit_sinks`; see docs/audit-sinks.md). */
  readonly auditSinks: readonly AuditSinkConfig[];
  /** Kubernetes clusters whose projected service-account tokens attest node agents (config file key `k8s_attestors`; docs/pki.md). */
  readonly k8sAttestors: readonly K8sAttestorConfig[];
  /**
   * Share of allowed decisions of the decision API whose request and determining policies are
   * logged in the audit event, 0..1 (every deny always is; docs/authz-decisions.md). Default 1.
   */
  readonly authzDecisionLogAllowSample: number;
}

export type AuditSinkConfig = JsonlSinkConfig | SyslogSinkConfig | WebhookSinkConfig;

export interface JsonlSinkConfig {
  readonly type: 'jsonl';
  readonly name: string;
  /** Absolute path of the live file. */
  readonly path: string;
  readonly maxBytes: number;
  readonly keep: number;
}

export interface SyslogSinkConfig {
  readonly type: 'syslog';
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Absolute path of a PEM CA bundle; undefined means the system roots. */
  readonly caFile: string | undefined;
  readonly facility: 'auth' | 'authpriv' | 'local0' | 'local1' | 'local2' | 'local3' | 'local4' | 'local5' | 'local6' | 'local7';
}

export interface WebhookSinkConfig {
  readonly type: 'webhook';
  readonly name: string;
  readonly url: string;
  readonly caFile: string | undefined;
  /**
   * The HMAC key, read from the environment variable the file names in `secret_env` (the file
   * never holds it). `secret` is one of the logger's redacted paths.
   */
  readonly secret: string | undefined;
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
  auditRetention?: string | undefined;
  auditOrigin?: string | undefined;
  authzDecisionLogAllowSample?: string | undefined;
}

const FILE_KEYS = {
  data_dir: 'dataDir',
  listen: 'listen',
  database_url: 'databaseUrl',
  body_limit: 'bodyLimit',
  log_level: 'logLevel',
  advertise_addr: 'advertiseAddr',
  pki_max_ttl: 'pkiMaxTtl',
  audit_retention: 'auditRetention',
  audit_origin: 'auditOrigin',
  authz_decision_log_allow_sample: 'authzDecisionLogAllowSample',
} as const satisfies Record<string, keyof ServerFlags>;

const ENV_KEYS = {
  RAMPART_DATA_DIR: 'dataDir',
  RAMPART_LISTEN: 'listen',
  RAMPART_DATABASE_URL: 'databaseUrl',
  RAMPART_BODY_LIMIT: 'bodyLimit',
  RAMPART_LOG_LEVEL: 'logLevel',
  RAMPART_ADVERTISE_ADDR: 'advertiseAddr',
  RAMPART_PKI_MAX_TTL: 'pkiMaxTtl',
  RAMPART_AUDIT_RETENTION: 'auditRetention',
  RAMPART_AUDIT_ORIGIN: 'auditOrigin',
  RAMPART_AUTHZ_DECISION_LOG_ALLOW_SAMPLE: 'authzDecisionLogAllowSample',
} as const satisfies Record<string, keyof ServerFlags>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function resolveServerConfig(
  flags: ServerFlags,
  env: Record<string, string | undefined> = process.env,
  cwd: string = process.cwd(),
): ServerConfig {
  const configPath = flags.config ? resolve(cwd, flags.config) : undefined;
  const file = configPath ? readConfigFile(configPath) : { flags: {}, auditSinks: undefined };
  const fromFile: ServerFlags = file.flags;
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
    auditRetentionMs: parseRetention(pick('auditRetention')),
    auditOrigin: parseAuditOrigin(pick('auditOrigin')),
    // Relative sink paths are relative to the config file, like the file's other references.
    auditSinks: parseAuditSinks(file.auditSinks, env, configPath ? dirname(configPath) : cwd),
    k8sAttestors: configPath ? k8sAttestorsIn(configPath) : [],
    authzDecisionLogAllowSample: parseSampleRate(pick('authzDecisionLogAllowSample') ?? '1'),
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

/** Shortest accepted retention: one hour, so a typo ("24" for "24h", i.e. seconds) cannot prune everything. */
const MIN_RETENTION_MS = 3_600_000;

/** `none` (or unset) keeps audit payloads forever; otherwise a duration of at least 1h, e.g. "2160h". */
/**
 * A C2SP signed-note key name, which is also the checkpoint origin: non-empty, no Unicode space,
 * no '+', no control character (c2sp.org/signed-note); by convention a schema-less URL such as
 * `rampart.example.com/audit` (c2sp.org/tlog-checkpoint).
 */
function parseAuditOrigin(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.length > 255 || !/^[^\s+\u0000-\u001f\u007f]+$/u.test(value)) {
    throw new ConfigError(`audit origin must be 1-255 characters without spaces, "+" or control characters, e.g. "rampart.example.com/audit" (got ${JSON.stringify(value.slice(0, 80))})`);
  }
  return value;
}

function parseRetention(value: string | undefined): number | undefined {
  if (value === undefined || value === 'none') return undefined;
  const ms = /^\d+$/.test(value) ? undefined : parseDuration(value);
  if (ms === undefined || ms < MIN_RETENTION_MS) {
    throw new ConfigError(`audit retention must be "none" or a duration with a unit of at least 1h, e.g. "2160h" (got "${value}")`);
  }
  return ms;
}

/** A fraction 0..1; a percentage or a typo must not silently log everything or nothing. */
function parseSampleRate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new ConfigError(`authz decision log allow sample must be a number from 0 to 1, e.g. "0.1" (got "${value}")`);
  }
  return n;
}

function readConfigFile(path: string): { flags: ServerFlags; auditSinks: unknown } {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return { flags: {}, auditSinks: undefined };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path} must be a YAML mapping`);
  const out: ServerFlags = {};
  let auditSinks: unknown;
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key === 'k8s_attestors') continue; // read by k8sAttestorsIn
    if (key === 'audit_sinks') {
      auditSinks = value;
      continue;
    }
    const target = (FILE_KEYS as Record<string, keyof ServerFlags>)[key];
    if (!target) throw new ConfigError(`config file ${path}: unknown key "${key}" (known: ${[...Object.keys(FILE_KEYS), 'audit_sinks'].join(', ')})`);
    if (typeof value !== 'string' && typeof value !== 'number') throw new ConfigError(`config file ${path}: "${key}" must be a string or number`);
    out[target] = String(value);
  }
  return { flags: out, auditSinks };
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

const SINK_KEYS = {
  jsonl: ['path', 'max_bytes', 'keep'],
  syslog: ['address', 'ca_file', 'facility'],
  webhook: ['url', 'ca_file', 'secret_env'],
} as const;
const SINK_FACILITIES = ['auth', 'authpriv', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;
const SINK_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `audit_sinks` from the config file: a list of mappings, each with a unique `name` (it names the
 * sink's durable cursor) and a `type`. Keys that do not belong to the type are refused rather
 * than ignored, so a misspelt `ca_file` cannot silently fall back to the system roots.
 */
function parseAuditSinks(value: unknown, env: Record<string, string | undefined>, baseDir: string): AuditSinkConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError('audit_sinks must be a list of sinks');
  const names = new Set<string>();
  return value.map((entry: unknown, i) => {
    const where = `audit_sinks[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new ConfigError(`${where} must be a mapping with name and type`);
    const raw = entry as Record<string, unknown>;
    const name = raw.name;
    if (typeof name !== 'string' || !SINK_NAME.test(name)) {
      throw new ConfigError(`${where}: name must be 1-63 lowercase letters, digits, '.', '_' or '-' (got ${JSON.stringify(name)})`);
    }
    if (names.has(name)) throw new ConfigError(`${where}: a sink named "${name}" is already configured`);
    names.add(name);
    const at = `audit sink "${name}"`;
    const type = raw.type;
    if (type !== 'jsonl' && type !== 'syslog' && type !== 'webhook') {
      throw new ConfigError(`${at}: type must be one of jsonl, syslog, webhook (got ${JSON.stringify(type)})`);
    }
    const allowed: readonly string[] = ['name', 'type', ...SINK_KEYS[type]];
    for (const key of Object.keys(raw)) {
      if (!allowed.includes(key)) throw new ConfigError(`${at}: key "${key}" does not apply to type ${type} (allowed: ${allowed.join(', ')})`);
    }
    const str = (key: string, required: boolean): string | undefined => {
      const v = raw[key];
      if (v === undefined || v === null) {
        if (required) throw new ConfigError(`${at}: ${key} is required for type ${type}`);
        return undefined;
      }
      if (typeof v !== 'string' || v === '') throw new ConfigError(`${at}: ${key} must be a non-empty string`);
      return v;
    };
    const int = (key: string, fallback: number, min: number, max: number): number => {
      const v = raw[key] ?? fallback;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
        throw new ConfigError(`${at}: ${key} must be an integer between ${min} and ${max} (got ${JSON.stringify(raw[key])})`);
      }
      return v;
    };
    const file = (key: string, required: boolean): string | undefined => {
      const p = str(key, required);
      return p === undefined ? undefined : resolve(baseDir, p);
    };
    switch (type) {
      case 'jsonl':
        return {
          type,
          name,
          path: file('path', true)!,
          maxBytes: int('max_bytes', 100 * 1024 * 1024, 4096, Number.MAX_SAFE_INTEGER),
          keep: int('keep', 10, 1, 1000),
        };
      case 'syslog': {
        const address = str('address', true)!;
        let listen: { host: string; port: number };
        try {
          listen = parseListen(address);
        } catch {
          throw new ConfigError(`${at}: address must be host:port of a syslog-over-TLS receiver, e.g. siem.example:6514 (got "${address}")`);
        }
        const facility = str('facility', false) ?? 'authpriv';
        if (!(SINK_FACILITIES as readonly string[]).includes(facility)) {
          throw new ConfigError(`${at}: facility must be one of ${SINK_FACILITIES.join(', ')} (got "${facility}")`);
        }
        return { type, name, host: listen.host, port: listen.port, caFile: file('ca_file', false), facility: facility as SyslogSinkConfig['facility'] };
      }
      case 'webhook': {
        const url = str('url', true)!;
        let parsed: URL | undefined;
        try {
          parsed = new URL(url);
        } catch {
          parsed = undefined;
        }
        if (!parsed || parsed.protocol !== 'https:' || parsed.username !== '' || parsed.password !== '') {
          throw new ConfigError(`${at}: url must be an https:// URL without credentials (got "${redactUrl(url)}")`);
        }
        const secretEnv = str('secret_env', false);
        let secret: string | undefined;
        if (secretEnv !== undefined) {
          if (!ENV_NAME.test(secretEnv)) throw new ConfigError(`${at}: secret_env must name an environment variable (got "${secretEnv}")`);
          secret = env[secretEnv];
          if (secret === undefined || secret === '') throw new ConfigError(`${at}: environment variable ${secretEnv} (secret_env) is not set`);
        }
        return { type, name, url: parsed.toString(), caFile: file('ca_file', false), secret };
      }
    }
  });
}

/** One `k8s_attestors` entry: a cluster whose projected service-account tokens attest agents. */
export interface K8sAttestorConfig {
  readonly cluster: string;
  /** The tenant the cluster's agents belong to (default `default`). */
  readonly tenant: string;
  readonly issuer: string;
  readonly audience: string;
  /** At most one of the three key sources; none: discovered from the (https) issuer. */
  readonly jwks: { keys: Record<string, unknown>[] } | undefined;
  readonly jwksFile: string | undefined;
  readonly jwksUri: string | undefined;
}

const K8S_ATTESTOR_KEYS = ['cluster', 'tenant', 'issuer', 'audience', 'jwks', 'jwks_file', 'jwks_uri'];
/** The cluster name becomes a SPIFFE ID path segment and a selector value. */
const CLUSTER_NAME = /^[A-Za-z0-9._-]{1,63}$/;

/**
 * `k8s_attestors` of the config file: `cluster`, `issuer` and `audience` required, `tenant`
 * optional, and one of `jwks` (the JWK Set, inline as YAML/JSON), `jwks_file` (relative to the
 * config file) or `jwks_uri` (https), or none of them to discover `jwks_uri` from an https issuer.
 * Unknown keys are refused, as for sinks.
 */
function k8sAttestorsIn(configPath: string): K8sAttestorConfig[] {
  const doc = parseYaml(readFileSync(configPath, 'utf8')) as Record<string, unknown> | null;
  const value = doc?.k8s_attestors;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError('k8s_attestors must be a list');
  const clusters = new Set<string>();
  return value.map((entry: unknown, i) => {
    const at = `k8s_attestors[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new ConfigError(`${at} must be a mapping`);
    const raw = entry as Record<string, unknown>;
    for (const key of Object.keys(raw)) if (!K8S_ATTESTOR_KEYS.includes(key)) throw new ConfigError(`${at}: unknown key "${key}" (allowed: ${K8S_ATTESTOR_KEYS.join(', ')})`);
    const str = (key: string): string | undefined => {
      const v = raw[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string' || v === '') throw new ConfigError(`${at}: ${key} must be a non-empty string`);
      return v;
    };
    const cluster = str('cluster');
    if (cluster === undefined || !CLUSTER_NAME.test(cluster)) throw new ConfigError(`${at}: cluster must be 1-63 characters of [A-Za-z0-9._-]`);
    if (clusters.has(cluster)) throw new ConfigError(`${at}: cluster "${cluster}" is configured twice`);
    clusters.add(cluster);
    const issuer = str('issuer');
    const audience = str('audience');
    if (issuer === undefined || audience === undefined) throw new ConfigError(`${at}: issuer and audience are required`);
    const jwks = raw.jwks;
    if (jwks !== undefined && (jwks === null || typeof jwks !== 'object' || !Array.isArray((jwks as { keys?: unknown }).keys))) {
      throw new ConfigError(`${at}: jwks must be a JWK Set ({"keys": [...]})`);
    }
    const jwksFile = str('jwks_file');
    const jwksUri = str('jwks_uri');
    // None: the keys are discovered from the issuer (OIDC Discovery), which must then be https.
    const sources = [jwks, jwksFile, jwksUri].filter((v) => v !== undefined).length;
    if (sources > 1 || (sources === 0 && !issuer.startsWith('https://'))) {
      throw new ConfigError(`${at}: give exactly one of jwks, jwks_file, jwks_uri, or none with an https:// issuer to discover its keys`);
    }
    if (jwksUri !== undefined && !jwksUri.startsWith('https://')) throw new ConfigError(`${at}: jwks_uri must be an https:// URL`);
    return {
      cluster,
      tenant: str('tenant') ?? 'default',
      issuer,
      audience,
      jwks: jwks as K8sAttestorConfig['jwks'],
      jwksFile: jwksFile === undefined ? undefined : resolve(dirname(configPath), jwksFile),
      jwksUri,
    };
  });
}

