import type { Clock } from '../../core/clock.js';
import { DatabaseError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import { type DatabaseConfig, POSTGRESQL_PLUGIN, checkConnectionUrl, configRecordId, renderConnectionUrl } from './config.js';
import { generatePassword } from './credentials.js';
import type { DatabasePlugin } from './plugin.js';
import { checkName } from './role.js';
import { checkTemplates, parseStatements, renderStatement } from './statements.js';
import type { DatabaseStore } from './store.js';

export interface EngineDeps {
  readonly plugin: DatabasePlugin;
  readonly sealer: Sealer;
  readonly clock: Clock;
}

/** The connection URL with the root credentials filled in. */
export function rootUrl(config: DatabaseConfig, sealer: Sealer): { url: string; password: string } {
  const password = Buffer.from(sealer.decrypt(config.tenant, configRecordId(config.mount, config.name), config.sealedPassword)).toString('utf8');
  return { url: renderConnectionUrl(config.connectionUrl, config.username, password), password };
}

export async function requireConfig(store: DatabaseStore, tenant: string, mount: string, name: string): Promise<DatabaseConfig> {
  const config = await store.getConfig(tenant, mount, name);
  if (!config) throw new DatabaseError('database.config_not_found', `no database connection named "${name}"`);
  return config;
}

/**
 * Writes `<mount>/config/<name>`. Fields left out keep their stored value, as in Vault; the
 * password is sealed; with `verify_connection` (the default) the engine logs in first and stores
 * nothing if that fails.
 */
export async function writeConfig(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string, body: Readonly<Record<string, unknown>>): Promise<DatabaseConfig> {
  checkName(name, 'connection');
  const existing = await store.getConfig(tenant, mount, name);
  const pluginName = str(body.plugin_name, 'plugin_name') ?? existing?.pluginName;
  if (pluginName !== POSTGRESQL_PLUGIN) throw new DatabaseError('database.config_invalid', `plugin_name must be "${POSTGRESQL_PLUGIN}"`);
  const connectionUrl = str(body.connection_url, 'connection_url') ?? existing?.connectionUrl;
  if (!connectionUrl) throw new DatabaseError('database.config_invalid', 'connection_url is required');
  checkConnectionUrl(connectionUrl);
  const username = str(body.username, 'username') ?? existing?.username ?? '';
  const recordId = configRecordId(mount, name);
  const given = str(body.password, 'password');
  const password = given ?? (existing ? Buffer.from(deps.sealer.decrypt(tenant, recordId, existing.sealedPassword)).toString('utf8') : '');
  const allowedRoles = list(body.allowed_roles, 'allowed_roles') ?? existing?.allowedRoles ?? [];
  const rootRotationStatements = body.root_rotation_statements === undefined ? (existing?.rootRotationStatements ?? []) : parseStatements(body.root_rotation_statements, 'root_rotation_statements');
  checkTemplates(rootRotationStatements, 'root_rotation_statements');
  const verifyConnection = body.verify_connection === undefined ? true : body.verify_connection === true || body.verify_connection === 'true';
  if (body.verify_connection !== undefined && typeof body.verify_connection !== 'boolean' && body.verify_connection !== 'true' && body.verify_connection !== 'false') {
    throw new DatabaseError('database.config_invalid', 'verify_connection must be a boolean');
  }
  if (verifyConnection) {
    try {
      await deps.plugin.verify(renderConnectionUrl(connectionUrl, username, password));
    } catch (err) {
      throw new DatabaseError('database.config_invalid', `error verifying the connection: ${(err as Error).message}`, { cause: err });
    }
  }
  const config: DatabaseConfig = {
    tenant,
    mount,
    name,
    pluginName,
    connectionUrl,
    username,
    sealedPassword: deps.sealer.encrypt(tenant, recordId, Buffer.from(password, 'utf8')),
    allowedRoles,
    verifyConnection,
    rootRotationStatements,
    updatedAt: deps.clock.now().toISOString(),
  };
  await store.putConfig(config);
  return config;
}

/**
 * `<mount>/rotate-root/<name>`: sets a new random password for the connection's own user in the
 * database, then stores it. Only the engine knows the new password afterwards (Vault's advice:
 * give the engine a user of its own).
 */
export async function rotateRoot(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string): Promise<void> {
  const config = await requireConfig(store, tenant, mount, name);
  if (!config.username) throw new DatabaseError('database.config_invalid', 'the connection has no username to rotate');
  const old = rootUrl(config, deps.sealer);
  const password = generatePassword();
  const statements = config.rootRotationStatements.length > 0 ? config.rootRotationStatements : [`ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}'`];
  // The database change commits only after the new password is written to the store, so a
  // store failure leaves the old password working rather than an unknown one in force.
  const pending = await deps.plugin.begin(old.url, statements.map((s) => renderStatement(s, { name: config.username, password })), [password, old.password]);
  try {
    await store.putConfig({
      ...config,
      sealedPassword: deps.sealer.encrypt(tenant, configRecordId(mount, name), Buffer.from(password, 'utf8')),
      updatedAt: deps.clock.now().toISOString(),
    });
  } catch (err) {
    await pending.rollback();
    throw err;
  }
  await pending.commit();
  await deps.plugin.forget(old.url);
}

function str(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new DatabaseError('database.config_invalid', `${field} must be a string`);
  return value;
}

/** Vault takes `allowed_roles` as a list or a comma-separated string. */
function list(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.map((s) => s.trim()).filter((s) => s !== '');
  throw new DatabaseError('database.config_invalid', `${field} must be a list of strings`);
}
