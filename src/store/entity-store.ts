import type { Kysely } from 'kysely';
import type { CedarEntityJson, EntitySnapshot, EntityStore } from '../authz/store.js';
import type { Database } from './schema.js';

/**
 * Entity stores in one row per policy store. A replacement bumps the revision with a single
 * `update … set revision = revision + 1` (or the first insert), so two concurrent replacements
 * serialize on the row and never share a revision; on a first-insert race the loser's primary
 * key violation fails its transaction rather than overwrite silently.
 */
export class SqlEntityStore implements EntityStore {
  constructor(private readonly db: Kysely<Database>) {}

  async entities(tenant: string, store: string): Promise<EntitySnapshot> {
    const r = await this.db
      .selectFrom('authz_entities')
      .select(['revision', 'entities'])
      .where('tenant', '=', tenant)
      .where('store', '=', store)
      .executeTakeFirst();
    if (!r) return { revision: 0, entities: [] };
    return { revision: Number(r.revision), entities: JSON.parse(r.entities) as CedarEntityJson[] };
  }

  async replace(tenant: string, store: string, entities: readonly CedarEntityJson[], updatedAt: string): Promise<number> {
    const text = JSON.stringify(entities);
    const updated = await this.db
      .updateTable('authz_entities')
      .set((eb) => ({ entities: text, updated_at: updatedAt, revision: eb('revision', '+', 1) }))
      .where('tenant', '=', tenant)
      .where('store', '=', store)
      .returning('revision')
      .executeTakeFirst();
    if (updated) return Number(updated.revision);
    await this.db.insertInto('authz_entities').values({ tenant, store, revision: 1, entities: text, updated_at: updatedAt }).execute();
    return 1;
  }
}
