import { DatabaseError } from '../../core/errors.js';

/** The only plugin this engine speaks (Vault's name, so existing configurations apply unchanged). */
export const POSTGRESQL_PLUGIN = 'postgresql-database-plugin';

/**
 * A connection of the database engine (`<mount>/config/<name>`,
 * https://developer.hashicorp.com/vault/api-docs/secret/databases#configure-connection). The
 * root password is kept only sealed; reads never return it.
 */
export interface DatabaseConfig {
  readonly tenant: string;
  readonly mount: string;
  readonly name: string;
  readonly pluginName: string;
  /** May hold `{{username}}` and `{{password}}`, filled in (URL-encoded) when connecting. */
  readonly connectionUrl: string;
  readonly username: string;
  /** Barrier ciphertext of the root password, sealed to the record id {@link configRecordId}. */
  readonly sealedPassword: string;
  /** While a root rotation is under way, the new password's ciphertext (password-slot.ts). */
  readonly pendingSealedPassword?: string | undefined;
  /** Role names allowed to use this connection; `*` allows every role. */
  readonly allowedRoles: readonly string[];
  readonly verifyConnection: boolean;
  readonly rootRotationStatements: readonly string[];
  readonly updatedAt: string;
}

/** The associated data of a connection's sealed password: moving it to another record fails. */
export function configRecordId(mount: string, name: string): string {
  return `database/${mount}/config/${name}`;
}

/** What a read answers: Vault's shape, with `connection_details` and never the password. */
export function configView(config: DatabaseConfig): Record<string, unknown> {
  return {
    plugin_name: config.pluginName,
    plugin_version: '',
    connection_details: { connection_url: config.connectionUrl, username: config.username },
    allowed_roles: [...config.allowedRoles],
    root_credentials_rotate_statements: [...config.rootRotationStatements],
    password_policy: '',
    verify_connection: config.verifyConnection,
  };
}

/** `allowed_roles` entries are globs where `*` matches any run of characters, as in Vault. */
export function allowsRole(config: DatabaseConfig, role: string): boolean {
  return config.allowedRoles.some((pattern) => {
    const parts = pattern.split('*');
    if (parts.length === 1) return pattern === role;
    if (!role.startsWith(parts[0]!) || !role.endsWith(parts.at(-1)!) || role.length < parts[0]!.length + parts.at(-1)!.length) return false;
    let at = parts[0]!.length;
    for (const middle of parts.slice(1, -1)) {
      const found = role.indexOf(middle, at);
      if (found === -1 || found + middle.length > role.length - parts.at(-1)!.length) return false;
      at = found + middle.length;
    }
    return true;
  });
}

/** Checks a connection URL is a PostgreSQL URL; the templated credentials need not be filled in. */
export function checkConnectionUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url.replaceAll('{{username}}', 'u').replaceAll('{{password}}', 'p'));
  } catch {
    throw new DatabaseError('database.config_invalid', 'connection_url is not a URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new DatabaseError('database.config_invalid', 'connection_url must be a postgres:// or postgresql:// URL');
  }
}

/** The URL to connect with: `{{username}}` and `{{password}}` filled in, URL-encoded. */
export function renderConnectionUrl(url: string, username: string, password: string): string {
  return url.replaceAll('{{username}}', encodeURIComponent(username)).replaceAll('{{password}}', encodeURIComponent(password));
}
