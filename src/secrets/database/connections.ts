import type { Clock } from '../../core/clock.js';
import { DatabaseError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import { type DatabaseConfig, POSTGRESQL_PLUGIN, checkConnectionUrl, configRecordId, renderConnectionUrl } from './config.js';
import { generatePassword } from './credentials.js';
import type { DatabasePlugin } from './plugin.js';
import { checkName } from './role.js';
import { type PasswordSlot, hasPending, openCurrent, openPending, sameSlot, sealCurrent, sealPending } from './password-slot.js';
import { checkTemplates, parseStatements, renderStatement } from './statements.js';
import type { DatabaseStore } from './store.js';

export interface EngineDeps {
  readonly plugin: DatabasePlugin;
  readonly sealer: Sealer;
  readonly clock: Clock;
}

/** A store transaction of the engine's own, for the bookkeeping around a call to the target database. */
export type DatabaseTransact = <T>(work: (stores: { readonly database: DatabaseStore }) => Promise<T>) => Promise<T>;

/** Runs `work` on `store` directly: for callers already inside a transaction, or tests. */
export const inStore =
  (store: DatabaseStore): DatabaseTransact =>
  (work) =>
    work({ database: store });

/** The connection URL with the root credentials in force filled in. */
export function rootUrl(config: DatabaseConfig, sealer: Sealer): { url: string; password: string } {
  const password = openCurrent(sealer, config.tenant, configRecordId(config.mount, config.name), config);
  return { url: renderConnectionUrl(config.connectionUrl, config.username, password), password };
}

export async function requireConfig(store: DatabaseStore, tenant: string, mount: string, name: string): Promise<DatabaseConfig> {
  const config = await store.getConfig(tenant, mount, name);
  if (!config) throw new DatabaseError('database.config_not_found', `no database connection named "${name}"`);
  return config;
}

/** A connection record checked (and its login verified) outside the store transaction, to be stored in it. */
export interface PreparedConfig {
  readonly config: DatabaseConfig;
  /** The record it was derived from (its sealed password and time), or undefined for a new connection. */
  readonly basedOn: string | undefined;
}

const versionOf = (config: DatabaseConfig | undefined) => config && `${config.updatedAt} ${config.sealedPassword} ${config.pendingSealedPassword ?? ''}`;

/**
 * `<mount>/config/<name>`, first half, before the store transaction: checks the fields, merges
 * them with the stored record (fields left out keep their stored value, as in Vault), seals the
 * password and, with `verify_connection` (the default), logs in, which may take as long as the
 * target takes. Without a new password, a root rotation left unresolved is resolved first, so
 * that the password kept is the one in force. Nothing is written.
 */
export async function prepareConfig(
  store: DatabaseStore,
  transact: DatabaseTransact,
  deps: EngineDeps,
  tenant: string,
  mount: string,
  name: string,
  body: Readonly<Record<string, unknown>>,
): Promise<PreparedConfig> {
  checkName(name, 'connection');
  const given = str(body.password, 'password');
  const found = await store.getConfig(tenant, mount, name);
  // A password given replaces both; without one, the one kept must be the one in force.
  const existing = found && given === undefined && hasPending(found) ? await settleRootRotation(transact, deps, found) : found;
  const pluginName = str(body.plugin_name, 'plugin_name') ?? existing?.pluginName;
  if (pluginName !== POSTGRESQL_PLUGIN) throw new DatabaseError('database.config_invalid', `plugin_name must be "${POSTGRESQL_PLUGIN}"`);
  const connectionUrl = str(body.connection_url, 'connection_url') ?? existing?.connectionUrl;
  if (!connectionUrl) throw new DatabaseError('database.config_invalid', 'connection_url is required');
  checkConnectionUrl(connectionUrl);
  const username = str(body.username, 'username') ?? existing?.username ?? '';
  const recordId = configRecordId(mount, name);
  const password = given ?? (existing ? openCurrent(deps.sealer, tenant, recordId, existing) : '');
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
    ...sealCurrent(deps.sealer, tenant, recordId, password),
    allowedRoles,
    verifyConnection,
    rootRotationStatements,
    updatedAt: deps.clock.now().toISOString(),
  };
  return { config, basedOn: versionOf(existing) };
}

/**
 * `<mount>/config/<name>`, second half, in the request's transaction: stores the prepared record
 * unless the connection changed since it was prepared (a root rotation, another write): storing
 * it then could put back a root password no longer in force, so the write is refused, to be retried.
 */
export async function storeConfig(store: DatabaseStore, prepared: PreparedConfig): Promise<void> {
  const { tenant, mount, name } = prepared.config;
  if (versionOf(await store.getConfig(tenant, mount, name)) !== prepared.basedOn) {
    throw new DatabaseError('database.config_invalid', `the connection "${name}" changed while it was being verified; retry`);
  }
  await store.putConfig(prepared.config);
}

/** Writes `<mount>/config/<name>` in one go: {@link prepareConfig} then {@link storeConfig}, on one store. */
export async function writeConfig(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string, body: Readonly<Record<string, unknown>>): Promise<DatabaseConfig> {
  const prepared = await prepareConfig(store, inStore(store), deps, tenant, mount, name, body);
  await storeConfig(store, prepared);
  return prepared.config;
}

/** A root rotation under way: the new password is pending in the record; the target may or may not have it yet. */
export interface RootRotation {
  readonly tenant: string;
  readonly mount: string;
  readonly name: string;
  readonly password: string;
  /** The record's sealed passwords, the new one pending, as written. */
  readonly slot: PasswordSlot;
  readonly oldUrl: string;
  readonly statements: readonly string[];
  readonly secrets: readonly string[];
}

/**
 * `<mount>/rotate-root/<name>`, step 1, in a store transaction of its own (committed before the
 * target is touched): draws a new password and seals it into the record as pending. Refused while
 * another rotation of the connection is in flight.
 */
export async function beginRootRotation(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string): Promise<RootRotation> {
  const config = await requireConfig(store, tenant, mount, name);
  if (!config.username) throw new DatabaseError('database.config_invalid', 'the connection has no username to rotate');
  if (hasPending(config)) throw new DatabaseError('database.config_invalid', `a root rotation of "${name}" is in progress; retry`);
  const old = rootUrl(config, deps.sealer);
  const password = generatePassword();
  const statements = rootRotationStatements(config);
  const slot: PasswordSlot = { sealedPassword: config.sealedPassword, ...sealPending(deps.sealer, tenant, configRecordId(mount, name), password) };
  await store.putConfig({ ...config, ...slot, updatedAt: deps.clock.now().toISOString() });
  return {
    tenant,
    mount,
    name,
    password,
    slot,
    oldUrl: old.url,
    statements: statements.map((s) => renderStatement(s, { name: config.username, password })),
    secrets: [password, old.password],
  };
}

/**
 * Step 2, outside any store transaction: sets the new password on the target and commits there.
 * When that fails the target may or may not have committed (a lost reply), so the rotation is
 * completed at once if the target can be reached ({@link settleRootRotation}); the error is
 * thrown all the same.
 */
export async function applyRootRotation(store: DatabaseStore, transact: DatabaseTransact, deps: EngineDeps, rotation: RootRotation): Promise<void> {
  try {
    await deps.plugin.execute(rotation.oldUrl, rotation.statements, rotation.secrets);
  } catch (err) {
    const config = await store.getConfig(rotation.tenant, rotation.mount, rotation.name);
    if (config && sameSlot(config, rotation.slot)) await settleRootRotation(transact, deps, config).catch(() => undefined);
    throw err;
  }
  // Pooled connections made with the old password are of no further use.
  await deps.plugin.forget(rotation.oldUrl);
}

/** Step 3, in the request's transaction with its audit event: the pending password becomes current. */
export async function finishRootRotation(store: DatabaseStore, deps: EngineDeps, rotation: RootRotation): Promise<void> {
  const config = await store.getConfig(rotation.tenant, rotation.mount, rotation.name);
  // Only a settlement (which found the new password in force and recorded it) or a delete comes between.
  if (!config || !sameSlot(config, rotation.slot)) return;
  await store.putConfig({
    ...config,
    ...sealCurrent(deps.sealer, config.tenant, configRecordId(config.mount, config.name), rotation.password),
    updatedAt: deps.clock.now().toISOString(),
  });
}

/**
 * `<mount>/rotate-root/<name>` in one go on one store (its steps as {@link DatabaseEngine} runs
 * them around the request's transaction). Only the engine knows the new password afterwards
 * (Vault's advice: give the engine a user of its own).
 */
export async function rotateRoot(store: DatabaseStore, deps: EngineDeps, tenant: string, mount: string, name: string): Promise<void> {
  const transact = inStore(store);
  await settleRootRotation(transact, deps, await requireConfig(store, tenant, mount, name));
  const rotation = await beginRootRotation(store, deps, tenant, mount, name);
  await applyRootRotation(store, transact, deps, rotation);
  await finishRootRotation(store, deps, rotation);
}

/**
 * Completes a root rotation that did not finish (the process died between its steps, or the
 * target's reply was lost), whether or not the target took the new password: logs in with the
 * pending password, else with the current one, sets the pending one again (idempotent), and
 * records it as current. Logging in alone could not tell which password is in force: a target
 * that authenticates by `trust`, `peer` or certificate accepts both. A rotation still running
 * sets the same password, and its last step then finds nothing left to do. When the target is
 * unreachable this throws `database.unavailable` and the record keeps both passwords. Returns the
 * record as it now is.
 */
export async function settleRootRotation(transact: DatabaseTransact, deps: EngineDeps, config: DatabaseConfig): Promise<DatabaseConfig> {
  const recordId = configRecordId(config.mount, config.name);
  const pending = openPending(deps.sealer, config.tenant, recordId, config);
  if (pending === undefined) return config;
  const current = config.sealedPassword === '' ? undefined : openCurrent(deps.sealer, config.tenant, recordId, config);
  const statements = rootRotationStatements(config).map((s) => renderStatement(s, { name: config.username, password: pending }));
  const setWith = (password: string) => deps.plugin.execute(renderConnectionUrl(config.connectionUrl, config.username, password), statements, [pending, ...(current === undefined ? [] : [current])]);
  try {
    await setWith(pending);
  } catch (err) {
    if (current === undefined) throw err;
    try {
      await setWith(current);
    } catch {
      throw new DatabaseError('database.unavailable', `a root rotation of "${config.name}" is unfinished and the database could not be reached to finish it; retry`, { cause: err });
    }
  }
  return transact(async ({ database }) => {
    const now = await database.getConfig(config.tenant, config.mount, config.name);
    if (!now || !sameSlot(now, config)) return now ?? config;
    const settled = { ...now, ...sealCurrent(deps.sealer, config.tenant, recordId, pending), updatedAt: deps.clock.now().toISOString() };
    await database.putConfig(settled);
    return settled;
  });
}

/**
 * Finishes the named connection's unfinished root rotation, if it has one (see
 * {@link settleRootRotation}); for every caller about to log in as root outside a transaction.
 */
export async function settleConnection(store: DatabaseStore, transact: DatabaseTransact, deps: EngineDeps, tenant: string, mount: string, name: string): Promise<void> {
  const config = await store.getConfig(tenant, mount, name);
  if (config && hasPending(config)) await settleRootRotation(transact, deps, config);
}

function rootRotationStatements(config: DatabaseConfig): readonly string[] {
  return config.rootRotationStatements.length > 0 ? config.rootRotationStatements : [`ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}'`];
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
