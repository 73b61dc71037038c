import type { Kysely, Selectable } from 'kysely';
import type { TransitKeyType } from '../secrets/transit/key-type.js';
import type {
  TransitKeyConfigChange,
  TransitKeyRecord,
  TransitKeyRef,
  TransitKeyStore,
  TransitKeyVersionRecord,
} from '../secrets/transit/store.js';
import type { Database, TransitKeysTable, TransitKeyVersionsTable } from './schema.js';

const flag = (value: boolean) => (value ? 1 : 0);

export class SqlTransitKeyStore implements TransitKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  async get(ref: TransitKeyRef): Promise<TransitKeyRecord | undefined> {
    const row = await this.db
      .selectFrom('transit_keys')
      .selectAll()
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .executeTakeFirst();
    return row && keyFromRow(row);
  }

  async version(ref: TransitKeyRef, version: number): Promise<TransitKeyVersionRecord | undefined> {
    const row = await this.db
      .selectFrom('transit_key_versions')
      .selectAll()
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .where('version', '=', version)
      .executeTakeFirst();
    return row && versionFromRow(row);
  }

  async versions(ref: TransitKeyRef): Promise<TransitKeyVersionRecord[]> {
    const rows = await this.db
      .selectFrom('transit_key_versions')
      .selectAll()
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .orderBy('version')
      .execute();
    return rows.map(versionFromRow);
  }

  async create(key: TransitKeyRecord, first: TransitKeyVersionRecord): Promise<boolean> {
    const inserted = await this.db
      .insertInto('transit_keys')
      .values({
        tenant: key.tenant,
        mount: key.mount,
        name: key.name,
        type: key.type,
        derived: flag(key.derived),
        exportable: flag(key.exportable),
        allow_plaintext_backup: flag(key.allowPlaintextBackup),
        deletion_allowed: flag(key.deletionAllowed),
        latest_version: key.latestVersion,
        min_decryption_version: key.minDecryptionVersion,
        min_encryption_version: key.minEncryptionVersion,
        min_available_version: key.minAvailableVersion,
        created_at: key.createdAt,
        updated_at: key.updatedAt,
      })
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'name']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) return false;
    await this.#insertVersion(key, first);
    return true;
  }

  async addVersion(ref: TransitKeyRef, next: TransitKeyVersionRecord, updatedAt: string): Promise<boolean> {
    // Claim the version number on the key row first: of two concurrent rotations only one
    // moves latest_version from next - 1 (PostgreSQL re-checks the predicate after the row lock).
    const claimed = await this.db
      .updateTable('transit_keys')
      .set({ latest_version: next.version, updated_at: updatedAt })
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .where('latest_version', '=', next.version - 1)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return false;
    await this.#insertVersion(ref, next);
    return true;
  }

  async configure(ref: TransitKeyRef, change: TransitKeyConfigChange): Promise<void> {
    await this.db
      .updateTable('transit_keys')
      .set({
        min_decryption_version: change.minDecryptionVersion,
        min_encryption_version: change.minEncryptionVersion,
        deletion_allowed: flag(change.deletionAllowed),
        exportable: flag(change.exportable),
        allow_plaintext_backup: flag(change.allowPlaintextBackup),
        updated_at: change.updatedAt,
      })
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .execute();
  }

  async trim(ref: TransitKeyRef, minAvailableVersion: number, updatedAt: string): Promise<void> {
    await this.db
      .deleteFrom('transit_key_versions')
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .where('version', '<', minAvailableVersion)
      .execute();
    await this.db
      .updateTable('transit_keys')
      .set({ min_available_version: minAvailableVersion, updated_at: updatedAt })
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .execute();
  }

  async delete(ref: TransitKeyRef): Promise<boolean> {
    await this.db
      .deleteFrom('transit_key_versions')
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .execute();
    const deleted = await this.db
      .deleteFrom('transit_keys')
      .where('tenant', '=', ref.tenant)
      .where('mount', '=', ref.mount)
      .where('name', '=', ref.name)
      .executeTakeFirst();
    return Number(deleted.numDeletedRows) === 1;
  }

  async list(tenant: string, mount: string, after: string | undefined, limit: number): Promise<string[]> {
    let query = this.db.selectFrom('transit_keys').select('name').where('tenant', '=', tenant).where('mount', '=', mount);
    if (after !== undefined) query = query.where('name', '>', after);
    const rows = await query.orderBy('name').limit(limit).execute();
    return rows.map((r) => r.name);
  }

  async purge(tenant: string, mount: string): Promise<void> {
    await this.db.deleteFrom('transit_key_versions').where('tenant', '=', tenant).where('mount', '=', mount).execute();
    await this.db.deleteFrom('transit_keys').where('tenant', '=', tenant).where('mount', '=', mount).execute();
  }

  async #insertVersion(ref: TransitKeyRef, v: TransitKeyVersionRecord): Promise<void> {
    await this.db
      .insertInto('transit_key_versions')
      .values({
        tenant: ref.tenant,
        mount: ref.mount,
        name: ref.name,
        version: v.version,
        sealed_material: v.sealedMaterial,
        public_key: v.publicKey,
        created_at: v.createdAt,
      })
      .execute();
  }
}

function keyFromRow(r: Selectable<TransitKeysTable>): TransitKeyRecord {
  return {
    tenant: r.tenant,
    mount: r.mount,
    name: r.name,
    type: r.type as TransitKeyType,
    derived: Number(r.derived) === 1,
    exportable: Number(r.exportable) === 1,
    allowPlaintextBackup: Number(r.allow_plaintext_backup) === 1,
    deletionAllowed: Number(r.deletion_allowed) === 1,
    latestVersion: Number(r.latest_version),
    minDecryptionVersion: Number(r.min_decryption_version),
    minEncryptionVersion: Number(r.min_encryption_version),
    minAvailableVersion: Number(r.min_available_version),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function versionFromRow(r: Selectable<TransitKeyVersionsTable>): TransitKeyVersionRecord {
  return { version: Number(r.version), sealedMaterial: r.sealed_material, publicKey: r.public_key, createdAt: r.created_at };
}
