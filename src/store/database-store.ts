import type { Kysely, Selectable } from 'kysely';
import type { DatabaseConfig } from '../secrets/database/config.js';
import type { DynamicRole } from '../secrets/database/role.js';
import type { StaticRole } from '../secrets/database/static-role.js';
import type { DatabaseStore } from '../secrets/database/store.js';
import type { Database, SecretsDatabaseConfigsTable, SecretsDatabaseRolesTable, SecretsDatabaseStaticRolesTable } from './schema.js';

/** DatabaseStore over `secrets_database_configs`, `secrets_database_roles` and `secrets_database_static_roles`. */
export class SqlDatabaseStore implements DatabaseStore {
  constructor(private readonly db: Kysely<Database>) {}

  async getConfig(tenant: string, mount: string, name: string): Promise<DatabaseConfig | undefined> {
    const row = await this.db.selectFrom('secrets_database_configs').selectAll().where('tenant', '=', tenant).where('mount', '=', mount).where('name', '=', name).executeTakeFirst();
    return row ? configFromRow(row) : undefined;
  }

  async putConfig(c: DatabaseConfig): Promise<void> {
    const row: SecretsDatabaseConfigsTable = {
      tenant: c.tenant,
      mount: c.mount,
      name: c.name,
      plugin_name: c.pluginName,
      connection_url: c.connectionUrl,
      username: c.username,
      sealed_password: c.sealedPassword,
      pending_sealed_password: c.pendingSealedPassword ?? null,
      allowed_roles: JSON.stringify(c.allowedRoles),
      verify_connection: c.verifyConnection ? 1 : 0,
      root_rotation_statements: JSON.stringify(c.rootRotationStatements),
      updated_at: c.updatedAt,
    };
    await this.db
      .insertInto('secrets_database_configs')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'name']).doUpdateSet({ ...row }))
      .execute();
  }

  async deleteConfig(tenant: string, mount: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('secrets_database_configs').where('tenant', '=', tenant).where('mount', '=', mount).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listConfigs(tenant: string, mount: string): Promise<string[]> {
    const rows = await this.db.selectFrom('secrets_database_configs').select('name').where('tenant', '=', tenant).where('mount', '=', mount).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  async getRole(tenant: string, mount: string, name: string): Promise<DynamicRole | undefined> {
    const row = await this.db.selectFrom('secrets_database_roles').selectAll().where('tenant', '=', tenant).where('mount', '=', mount).where('name', '=', name).executeTakeFirst();
    return row ? roleFromRow(row) : undefined;
  }

  async putRole(r: DynamicRole): Promise<void> {
    const row: SecretsDatabaseRolesTable = {
      tenant: r.tenant,
      mount: r.mount,
      name: r.name,
      db_name: r.dbName,
      creation_statements: JSON.stringify(r.creationStatements),
      revocation_statements: JSON.stringify(r.revocationStatements),
      renew_statements: JSON.stringify(r.renewStatements),
      default_ttl: r.defaultTtl,
      max_ttl: r.maxTtl,
      updated_at: r.updatedAt,
    };
    await this.db
      .insertInto('secrets_database_roles')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'name']).doUpdateSet({ ...row }))
      .execute();
  }

  async deleteRole(tenant: string, mount: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('secrets_database_roles').where('tenant', '=', tenant).where('mount', '=', mount).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listRoles(tenant: string, mount: string): Promise<string[]> {
    const rows = await this.db.selectFrom('secrets_database_roles').select('name').where('tenant', '=', tenant).where('mount', '=', mount).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  async getStaticRole(tenant: string, mount: string, name: string): Promise<StaticRole | undefined> {
    const row = await this.db.selectFrom('secrets_database_static_roles').selectAll().where('tenant', '=', tenant).where('mount', '=', mount).where('name', '=', name).executeTakeFirst();
    return row ? staticFromRow(row) : undefined;
  }

  async putStaticRole(r: StaticRole): Promise<void> {
    const row: SecretsDatabaseStaticRolesTable = {
      tenant: r.tenant,
      mount: r.mount,
      name: r.name,
      db_name: r.dbName,
      username: r.username,
      rotation_period: r.rotationPeriod,
      rotation_statements: JSON.stringify(r.rotationStatements),
      sealed_password: r.sealedPassword,
      pending_sealed_password: r.pendingSealedPassword ?? null,
      last_rotated_at: r.lastRotatedAt,
      next_rotation_at: r.nextRotationAt,
      rotation_attempts: r.rotationAttempts,
      last_error: r.lastError,
    };
    await this.db
      .insertInto('secrets_database_static_roles')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'name']).doUpdateSet({ ...row }))
      .execute();
  }

  async deleteStaticRole(tenant: string, mount: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('secrets_database_static_roles').where('tenant', '=', tenant).where('mount', '=', mount).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listStaticRoles(tenant: string, mount: string): Promise<string[]> {
    const rows = await this.db.selectFrom('secrets_database_static_roles').select('name').where('tenant', '=', tenant).where('mount', '=', mount).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  async dueStaticRoles(now: string, limit: number): Promise<StaticRole[]> {
    const rows = await this.db.selectFrom('secrets_database_static_roles').selectAll().where('next_rotation_at', '<=', now).orderBy('next_rotation_at').limit(limit).execute();
    return rows.map(staticFromRow);
  }

  async pendingRootRotations(): Promise<DatabaseConfig[]> {
    const rows = await this.db.selectFrom('secrets_database_configs').selectAll().where('pending_sealed_password', 'is not', null).orderBy('tenant').orderBy('mount').orderBy('name').execute();
    return rows.map(configFromRow);
  }

  async purgeMount(tenant: string, mount: string): Promise<void> {
    for (const table of ['secrets_database_configs', 'secrets_database_roles', 'secrets_database_static_roles'] as const) {
      await this.db.deleteFrom(table).where('tenant', '=', tenant).where('mount', '=', mount).execute();
    }
  }
}

function configFromRow(r: Selectable<SecretsDatabaseConfigsTable>): DatabaseConfig {
  return {
    tenant: r.tenant,
    mount: r.mount,
    name: r.name,
    pluginName: r.plugin_name,
    connectionUrl: r.connection_url,
    username: r.username,
    sealedPassword: r.sealed_password,
    ...(r.pending_sealed_password !== null && { pendingSealedPassword: r.pending_sealed_password }),
    allowedRoles: JSON.parse(r.allowed_roles) as string[],
    verifyConnection: Number(r.verify_connection) === 1,
    rootRotationStatements: JSON.parse(r.root_rotation_statements) as string[],
    updatedAt: r.updated_at,
  };
}

function roleFromRow(r: Selectable<SecretsDatabaseRolesTable>): DynamicRole {
  return {
    tenant: r.tenant,
    mount: r.mount,
    name: r.name,
    dbName: r.db_name,
    creationStatements: JSON.parse(r.creation_statements) as string[],
    revocationStatements: JSON.parse(r.revocation_statements) as string[],
    renewStatements: JSON.parse(r.renew_statements) as string[],
    defaultTtl: Number(r.default_ttl),
    maxTtl: Number(r.max_ttl),
    updatedAt: r.updated_at,
  };
}

function staticFromRow(r: Selectable<SecretsDatabaseStaticRolesTable>): StaticRole {
  return {
    tenant: r.tenant,
    mount: r.mount,
    name: r.name,
    dbName: r.db_name,
    username: r.username,
    rotationPeriod: Number(r.rotation_period),
    rotationStatements: JSON.parse(r.rotation_statements) as string[],
    sealedPassword: r.sealed_password,
    ...(r.pending_sealed_password !== null && { pendingSealedPassword: r.pending_sealed_password }),
    lastRotatedAt: r.last_rotated_at,
    nextRotationAt: r.next_rotation_at,
    rotationAttempts: Number(r.rotation_attempts),
    lastError: r.last_error,
  };
}
