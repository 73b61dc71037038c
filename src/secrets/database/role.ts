import { parseDuration } from '../../core/duration.js';
import { DatabaseError } from '../../core/errors.js';
import { checkTemplates, parseStatements } from './statements.js';

/**
 * A dynamic role (`<mount>/roles/<name>`,
 * https://developer.hashicorp.com/vault/api-docs/secret/databases#create-role): how to create,
 * renew and revoke a user for each `creds` request, and for how long.
 */
export interface DynamicRole {
  readonly tenant: string;
  readonly mount: string;
  readonly name: string;
  readonly dbName: string;
  readonly creationStatements: readonly string[];
  /** Empty: the default revocation (terminate sessions, reassign and drop owned, drop role). */
  readonly revocationStatements: readonly string[];
  /** Empty: the default renewal (`ALTER ROLE … VALID UNTIL`). */
  readonly renewStatements: readonly string[];
  /** Seconds; 0 means the mount's (or the system's) default. */
  readonly defaultTtl: number;
  readonly maxTtl: number;
  readonly updatedAt: string;
}

/** Vault's name rule for roles and connections (`framework.GenericNameRegex`). */
export const NAME_PATTERN = /^\w(?:[\w.-]*\w)?$/;

export function checkName(name: string, what: string): void {
  if (!NAME_PATTERN.test(name) || name.length > 128) {
    throw new DatabaseError('database.role_invalid', `${what} name must be letters, digits, '_', '-' and '.', starting and ending with a letter or digit`);
  }
}

/** A TTL field: a duration (`1h`, `90m`) or seconds; absent is 0 (the default). */
export function parseTtl(value: unknown, field: string): number {
  if (value === undefined || value === null || value === '') return 0;
  const ms = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined) throw new DatabaseError('database.role_invalid', `${field} must be a duration such as "1h" or a number of seconds`);
  return Math.floor(ms / 1000);
}

export function parseRole(tenant: string, mount: string, name: string, body: Readonly<Record<string, unknown>>, now: Date): DynamicRole {
  checkName(name, 'role');
  const dbName = body.db_name;
  if (typeof dbName !== 'string' || dbName === '') throw new DatabaseError('database.role_invalid', 'db_name is required');
  const creationStatements = parseStatements(body.creation_statements, 'creation_statements');
  if (creationStatements.length === 0) throw new DatabaseError('database.role_invalid', 'creation_statements are required');
  const revocationStatements = parseStatements(body.revocation_statements, 'revocation_statements');
  const renewStatements = parseStatements(body.renew_statements, 'renew_statements');
  checkTemplates(creationStatements, 'creation_statements');
  checkTemplates(revocationStatements, 'revocation_statements');
  checkTemplates(renewStatements, 'renew_statements');
  const defaultTtl = parseTtl(body.default_ttl, 'default_ttl');
  const maxTtl = parseTtl(body.max_ttl, 'max_ttl');
  if (maxTtl > 0 && defaultTtl > maxTtl) throw new DatabaseError('database.role_invalid', 'default_ttl cannot be greater than max_ttl');
  return { tenant, mount, name, dbName, creationStatements, revocationStatements, renewStatements, defaultTtl, maxTtl, updatedAt: now.toISOString() };
}

export function roleView(role: DynamicRole): Record<string, unknown> {
  return {
    db_name: role.dbName,
    creation_statements: [...role.creationStatements],
    revocation_statements: [...role.revocationStatements],
    rollback_statements: [],
    renew_statements: [...role.renewStatements],
    default_ttl: role.defaultTtl,
    max_ttl: role.maxTtl,
    credential_type: 'password',
  };
}

/** Vault's system default and maximum lease TTL: 32 days. */
export const SYSTEM_MAX_TTL_SECONDS = 768 * 3600;

/**
 * The TTL and max TTL a credential gets: the role's, else the mount's, else the system's; the
 * TTL never above the max (Vault's `framework.CalculateTTL`).
 */
export function effectiveTtls(role: DynamicRole, mount: { defaultLeaseTtl: number; maxLeaseTtl: number }): { ttl: number; maxTtl: number } {
  const systemMax = mount.maxLeaseTtl > 0 ? mount.maxLeaseTtl : SYSTEM_MAX_TTL_SECONDS;
  const maxTtl = role.maxTtl > 0 ? Math.min(role.maxTtl, systemMax) : systemMax;
  const ttl = role.defaultTtl > 0 ? role.defaultTtl : mount.defaultLeaseTtl > 0 ? mount.defaultLeaseTtl : SYSTEM_MAX_TTL_SECONDS;
  return { ttl: Math.min(ttl, maxTtl), maxTtl };
}
