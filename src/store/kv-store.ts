import { type Kysely, type Selectable, sql } from 'kysely';
import type { KvConfigRecord, KvKey, KvMetadataRecord, KvStore, KvVersionRecord } from '../secrets/kv/store.js';
import type { Dialect } from './database.js';
import { PreparedQuery } from './prepared-query.js';
import type { Database, KvMetadataTable, KvVersionsTable } from './schema.js';

type KeyParams = { tenant: string; mount: string; path: string };

const selectMetadata = (db: Kysely<Database>, k: KeyParams) =>
  db.selectFrom('kv_metadata').selectAll().where('tenant', '=', k.tenant).where('mount', '=', k.mount).where('path', '=', k.path);

// The reads of every KV request, compiled once (prepared-query.ts).
const metadataOf = new PreparedQuery(selectMetadata);
const metadataForUpdate = new PreparedQuery((db, k: KeyParams) => selectMetadata(db, k).forUpdate());
const versionOf = new PreparedQuery((db, k: KeyParams & { version: number }) =>
  db.selectFrom('kv_versions').selectAll().where('tenant', '=', k.tenant).where('mount', '=', k.mount).where('path', '=', k.path).where('version', '=', k.version),
);
/**
 * `GET data/`: the metadata row with the asked version (0: the current one) joined to it, one
 * primary-key lookup each. The version's columns are null when it does not exist.
 */
const metadataWithVersion = new PreparedQuery((db, k: KeyParams & { version: number }) =>
  db
    .selectFrom('kv_metadata as m')
    .leftJoin('kv_versions as v', (join) =>
      join
        .onRef('v.tenant', '=', 'm.tenant')
        .onRef('v.mount', '=', 'm.mount')
        .onRef('v.path', '=', 'm.path')
        .on('v.version', '=', sql<number>`coalesce(nullif(${k.version}, 0), m.current_version)`),
    )
    .selectAll('m')
    .select(['v.version as v_version', 'v.ciphertext as v_ciphertext', 'v.created_at as v_created_at', 'v.deletion_time as v_deletion_time', 'v.destroyed as v_destroyed'])
    .where('m.tenant', '=', k.tenant)
    .where('m.mount', '=', k.mount)
    .where('m.path', '=', k.path),
);

const keyParams = (k: KvKey): KeyParams => ({ tenant: k.tenant, mount: k.mount, path: k.path });

export class SqlKvStore implements KvStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async metadata(k: KvKey): Promise<KvMetadataRecord | undefined> {
    const [r] = await metadataOf.execute(this.db, keyParams(k));
    return r && toMetadata(r);
  }

  async readVersion(k: KvKey, version: number): Promise<{ metadata: KvMetadataRecord; version: KvVersionRecord | undefined } | undefined> {
    const [r] = await metadataWithVersion.execute(this.db, { tenant: k.tenant, mount: k.mount, path: k.path, version });
    if (!r) return undefined;
    const metadata = toMetadata(r);
    if (r.v_version === null) return { metadata, version: undefined };
    return {
      metadata,
      version: toVersion({ tenant: r.tenant, mount: r.mount, path: r.path, version: r.v_version, ciphertext: r.v_ciphertext, created_at: r.v_created_at!, deletion_time: r.v_deletion_time, destroyed: r.v_destroyed! }),
    };
  }

  async lockMetadata(k: KvKey, at: string): Promise<KvMetadataRecord> {
    await this.db
      .insertInto('kv_metadata')
      .values({
        tenant: k.tenant,
        mount: k.mount,
        path: k.path,
        current_version: 0,
        oldest_version: 0,
        max_versions: 0,
        cas_required: 0,
        delete_version_after: 0,
        custom_metadata: '{}',
        created_at: at,
        updated_at: at,
      })
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'path']).doNothing())
      .execute();
    const [r] = await (this.dialect === 'postgres' ? metadataForUpdate : metadataOf).execute(this.db, keyParams(k));
    if (!r) throw new Error(`kv_metadata row of ${k.path} vanished inside its transaction`);
    return toMetadata(r);
  }

  async putMetadata(m: KvMetadataRecord): Promise<void> {
    const values = {
      current_version: m.currentVersion,
      oldest_version: m.oldestVersion,
      max_versions: m.maxVersions,
      cas_required: m.casRequired ? 1 : 0,
      delete_version_after: m.deleteVersionAfter,
      custom_metadata: JSON.stringify(m.customMetadata),
      updated_at: m.updatedAt,
    };
    await this.db
      .insertInto('kv_metadata')
      .values({ tenant: m.tenant, mount: m.mount, path: m.path, created_at: m.createdAt, ...values })
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'path']).doUpdateSet(values))
      .execute();
  }

  async version(k: KvKey, version: number): Promise<KvVersionRecord | undefined> {
    const [r] = await versionOf.execute(this.db, { tenant: k.tenant, mount: k.mount, path: k.path, version });
    return r && toVersion(r);
  }

  async versions(k: KvKey): Promise<KvVersionRecord[]> {
    const rows = await this.db
      .selectFrom('kv_versions')
      .selectAll()
      .where('tenant', '=', k.tenant)
      .where('mount', '=', k.mount)
      .where('path', '=', k.path)
      .orderBy('version')
      .execute();
    return rows.map(toVersion);
  }

  async insertVersion(v: KvVersionRecord): Promise<void> {
    await this.db
      .insertInto('kv_versions')
      .values({
        tenant: v.tenant,
        mount: v.mount,
        path: v.path,
        version: v.version,
        ciphertext: v.ciphertext,
        created_at: v.createdAt,
        deletion_time: v.deletionTime,
        destroyed: v.destroyed ? 1 : 0,
      })
      .execute();
  }

  async updateVersion(k: KvKey, version: number, change: { readonly deletionTime?: string | null; readonly destroy?: true }): Promise<void> {
    await this.db
      .updateTable('kv_versions')
      .set({
        ...(change.deletionTime === undefined ? {} : { deletion_time: change.deletionTime }),
        ...(change.destroy ? { destroyed: 1, ciphertext: null } : {}),
      })
      .where('tenant', '=', k.tenant)
      .where('mount', '=', k.mount)
      .where('path', '=', k.path)
      .where('version', '=', version)
      .execute();
  }

  async pruneBefore(k: KvKey, version: number): Promise<void> {
    await this.db
      .deleteFrom('kv_versions')
      .where('tenant', '=', k.tenant)
      .where('mount', '=', k.mount)
      .where('path', '=', k.path)
      .where('version', '<', version)
      .execute();
  }

  async deleteSecret(k: KvKey): Promise<void> {
    await this.db.deleteFrom('kv_versions').where('tenant', '=', k.tenant).where('mount', '=', k.mount).where('path', '=', k.path).execute();
    await this.db.deleteFrom('kv_metadata').where('tenant', '=', k.tenant).where('mount', '=', k.mount).where('path', '=', k.path).execute();
  }

  async paths(tenant: string, mount: string, prefix: string): Promise<string[]> {
    // substr instead of LIKE: SQLite's LIKE ignores ASCII case and both treat % and _ as wildcards.
    // substr counts characters (code points), so the prefix is measured in code points too.
    const rows = await this.db
      .selectFrom('kv_metadata')
      .select('path')
      .where('tenant', '=', tenant)
      .where('mount', '=', mount)
      .where(sql<string>`substr(path, 1, ${[...prefix].length})`, '=', prefix)
      .execute();
    return rows.map((r) => r.path).sort();
  }

  async config(tenant: string, mount: string): Promise<KvConfigRecord | undefined> {
    const r = await this.db.selectFrom('kv_config').selectAll().where('tenant', '=', tenant).where('mount', '=', mount).executeTakeFirst();
    return (
      r && {
        tenant: r.tenant,
        mount: r.mount,
        maxVersions: Number(r.max_versions),
        casRequired: Number(r.cas_required) === 1,
        deleteVersionAfter: Number(r.delete_version_after),
      }
    );
  }

  async putConfig(c: KvConfigRecord): Promise<void> {
    const values = { max_versions: c.maxVersions, cas_required: c.casRequired ? 1 : 0, delete_version_after: c.deleteVersionAfter };
    await this.db
      .insertInto('kv_config')
      .values({ tenant: c.tenant, mount: c.mount, ...values })
      .onConflict((oc) => oc.columns(['tenant', 'mount']).doUpdateSet(values))
      .execute();
  }

  async purgeMount(tenant: string, mount: string): Promise<void> {
    for (const table of ['kv_versions', 'kv_metadata', 'kv_config'] as const) {
      await this.db.deleteFrom(table).where('tenant', '=', tenant).where('mount', '=', mount).execute();
    }
  }
}

function toMetadata(r: Selectable<KvMetadataTable>): KvMetadataRecord {
  return {
    tenant: r.tenant,
    mount: r.mount,
    path: r.path,
    currentVersion: Number(r.current_version),
    oldestVersion: Number(r.oldest_version),
    maxVersions: Number(r.max_versions),
    casRequired: Number(r.cas_required) === 1,
    deleteVersionAfter: Number(r.delete_version_after),
    customMetadata: JSON.parse(r.custom_metadata) as Record<string, string>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toVersion(r: Selectable<KvVersionsTable>): KvVersionRecord {
  return {
    tenant: r.tenant,
    mount: r.mount,
    path: r.path,
    version: Number(r.version),
    ciphertext: r.ciphertext,
    createdAt: r.created_at,
    deletionTime: r.deletion_time,
    destroyed: Number(r.destroyed) === 1,
  };
}
