import { type Kysely, type Selectable, sql } from 'kysely';
import type { EngineType, Mount } from '../secrets/engine.js';
import type { MountStore } from '../secrets/store.js';
import type { Dialect } from './database.js';
import { PreparedQuery } from './prepared-query.js';
import type { Database, SecretsMountsTable } from './schema.js';
import { isUniqueViolation } from './unique-violation.js';

/** The mount table, read when a tenant's cached table is older than the mount index's TTL and by every mount change. */
const mountsOfTenant = new PreparedQuery((db, p: { tenant: string }) => db.selectFrom('secrets_mounts').selectAll().where('tenant', '=', p.tenant).orderBy('path'));

export class SqlMountStore implements MountStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async lockTenant(tenant: string): Promise<void> {
    if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`rampart.mounts.${tenant}`}))`.execute(this.db);
  }

  async list(tenant: string): Promise<Mount[]> {
    const rows = await mountsOfTenant.execute(this.db, { tenant });
    return rows.map(toMount);
  }

  async insert(m: Mount): Promise<boolean> {
    try {
      await this.db
        .insertInto('secrets_mounts')
        .values({
          tenant: m.tenant,
          path: m.path,
          type: m.type,
          accessor: m.accessor,
          description: m.description,
          options: JSON.stringify(m.options),
          default_lease_ttl: m.defaultLeaseTtl,
          max_lease_ttl: m.maxLeaseTtl,
          created_at: m.createdAt,
        })
        .execute();
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async update(m: Mount): Promise<void> {
    await this.db
      .updateTable('secrets_mounts')
      .set({ description: m.description, options: JSON.stringify(m.options), default_lease_ttl: m.defaultLeaseTtl, max_lease_ttl: m.maxLeaseTtl })
      .where('tenant', '=', m.tenant)
      .where('path', '=', m.path)
      .execute();
  }

  async delete(tenant: string, path: string): Promise<boolean> {
    const r = await this.db.deleteFrom('secrets_mounts').where('tenant', '=', tenant).where('path', '=', path).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async allPaths(): Promise<string[]> {
    const rows = await this.db.selectFrom('secrets_mounts').select('path').distinct().execute();
    return rows.map((r) => r.path);
  }
}

function toMount(r: Selectable<SecretsMountsTable>): Mount {
  return {
    tenant: r.tenant,
    path: r.path,
    type: r.type as EngineType,
    accessor: r.accessor,
    description: r.description,
    options: JSON.parse(r.options) as Record<string, string>,
    defaultLeaseTtl: Number(r.default_lease_ttl),
    maxLeaseTtl: Number(r.max_lease_ttl),
    createdAt: r.created_at,
  };
}
