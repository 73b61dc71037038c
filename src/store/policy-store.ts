import type { Kysely } from 'kysely';
import type { PolicyStore, PolicyVersionRecord, PolicyVersionStatus } from '../authz/store.js';
import type { Database } from './schema.js';

export class SqlPolicyStore implements PolicyStore {
  constructor(private readonly db: Kysely<Database>) {}

  async active(tenant: string, store: string): Promise<PolicyVersionRecord | undefined> {
    const r = await this.db
      .selectFrom('policy_versions')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('store', '=', store)
      .where('status', '=', 'active')
      .executeTakeFirst();
    if (!r) return undefined;
    return {
      tenant: r.tenant,
      store: r.store,
      version: r.version,
      hash: r.hash,
      policies: JSON.parse(r.policies) as Record<string, string>,
      schema: r.schema,
      status: r.status as PolicyVersionStatus,
      author: r.author,
      message: r.message,
      createdAt: r.created_at,
    };
  }

  /**
   * Supersedes the active version and inserts the new one atomically: in the caller's
   * transaction, or in one of its own. The partial unique index on active versions makes a
   * concurrent second activation fail instead of leaving two active versions.
   */
  async insert(v: PolicyVersionRecord): Promise<void> {
    if (!this.db.isTransaction) {
      await this.db.transaction().execute((trx) => new SqlPolicyStore(trx).insert(v));
      return;
    }
    if (v.status === 'active') {
      await this.db
        .updateTable('policy_versions')
        .set({ status: 'superseded' })
        .where('tenant', '=', v.tenant)
        .where('store', '=', v.store)
        .where('status', '=', 'active')
        .execute();
    }
    await this.db
      .insertInto('policy_versions')
      .values({
        tenant: v.tenant,
        store: v.store,
        version: v.version,
        hash: v.hash,
        policies: JSON.stringify(v.policies),
        schema: v.schema,
        status: v.status,
        author: v.author,
        message: v.message,
        created_at: v.createdAt,
      })
      .execute();
  }

  async latestVersion(tenant: string, store: string): Promise<number> {
    const r = await this.db
      .selectFrom('policy_versions')
      .select((eb) => eb.fn.max('version').as('v'))
      .where('tenant', '=', tenant)
      .where('store', '=', store)
      .executeTakeFirst();
    return Number(r?.v ?? 0);
  }
}
