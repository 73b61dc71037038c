import { DatabaseError } from '../../core/errors.js';
import { checkName, parseTtl } from './role.js';
import { checkTemplates, parseStatements } from './statements.js';

/**
 * A static role (`<mount>/static-roles/<name>`,
 * https://developer.hashicorp.com/vault/api-docs/secret/databases#create-static-role): an existing
 * database user whose password the engine owns and rotates every `rotationPeriod` seconds.
 */
export interface StaticRole {
  readonly tenant: string;
  readonly mount: string;
  readonly name: string;
  readonly dbName: string;
  readonly username: string;
  readonly rotationPeriod: number;
  /** Empty: the default, `ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`. */
  readonly rotationStatements: readonly string[];
  /** Barrier ciphertext of the current password, sealed to {@link staticRoleRecordId}. */
  readonly sealedPassword: string;
  /** While a rotation is under way, the new password's ciphertext (password-slot.ts). */
  readonly pendingSealedPassword?: string | undefined;
  readonly lastRotatedAt: string;
  readonly nextRotationAt: string;
  /** Failed scheduled rotations since the last success (retried with backoff). */
  readonly rotationAttempts: number;
  readonly lastError: string | null;
}

/** Vault refuses rotation periods under 5 seconds. */
const MIN_ROTATION_PERIOD = 5;

export const DEFAULT_ROTATION_STATEMENTS: readonly string[] = [`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`];

export function staticRoleRecordId(mount: string, name: string): string {
  return `database/${mount}/static-roles/${name}`;
}

export interface StaticRoleInput {
  readonly dbName: string;
  readonly username: string;
  readonly rotationPeriod: number;
  readonly rotationStatements: readonly string[];
}

export function parseStaticRole(name: string, body: Readonly<Record<string, unknown>>, existing: StaticRole | undefined): StaticRoleInput {
  checkName(name, 'static role');
  const dbName = body.db_name ?? existing?.dbName;
  if (typeof dbName !== 'string' || dbName === '') throw new DatabaseError('database.role_invalid', 'db_name is required');
  const username = body.username ?? existing?.username;
  if (typeof username !== 'string' || username === '') throw new DatabaseError('database.role_invalid', 'username is required');
  if (existing && username !== existing.username) throw new DatabaseError('database.role_invalid', 'the username of a static role cannot be changed');
  const rotationPeriod = body.rotation_period === undefined ? (existing?.rotationPeriod ?? 0) : parseTtl(body.rotation_period, 'rotation_period');
  if (rotationPeriod < MIN_ROTATION_PERIOD) throw new DatabaseError('database.role_invalid', `rotation_period must be at least ${MIN_ROTATION_PERIOD} seconds`);
  const rotationStatements = body.rotation_statements === undefined ? [...(existing?.rotationStatements ?? [])] : parseStatements(body.rotation_statements, 'rotation_statements');
  checkTemplates(rotationStatements, 'rotation_statements');
  return { dbName, username, rotationPeriod, rotationStatements };
}

export function staticRoleView(role: StaticRole): Record<string, unknown> {
  return {
    db_name: role.dbName,
    username: role.username,
    rotation_period: role.rotationPeriod,
    rotation_statements: [...role.rotationStatements],
    last_vault_rotation: role.lastRotatedAt,
    credential_type: 'password',
  };
}
