import type { Kysely, Selectable } from 'kysely';
import type {
  PolicyStore,
  PolicyStoreSummary,
  PolicyVersionRecord,
  PolicyVersionStatus,
  PolicyVersionSummary,
} from '../authz/store.js';
import { AuthzError } from '../core/errors.js';
import type { Dialect } from './database.js';
import type { Database, PolicyVersionsTable } from './schema.js';
import { isUniqueViolation } from './unique-violation.js';

export class SqlPolicyStore implements PolicyStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async active(tenant: string, store: string): Promise<PolicyVersionRecord | undefined> {
    const r = await this.db
      .selectFrom('policy_versions')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('store', '=', store)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return r && recordOf(r);
  }

  async get(tenant: string, store: string, version: number): Promise<PolicyVersionRecord | undefined> {
    const r = await this.db
      .selectFrom('policy_versions')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('store', '=', store)
      .where('version', '=', version)
      .executeTakeFirst();
    return r && recordOf(r);
  }

  async versions(tenant: string, store: string, page: { limit: number; before: number | undefined }): Promise<PolicyVersionSummary[]> {
    let q = this.db
      .selectFrom('policy_versions')
      .select(['tenant', 'store', 'version', 'hash', 'status', 'author', 'message', 'created_at', 'reasons'])
      .where('tenant', '=', tenant)
      .where('store', '=', store);
    if (page.before !== undefined) q = q.where('version', '<', page.before);
    const rows = await q.orderBy('version', 'desc').limit(page.limit).execute();
    return rows.map((r) => ({
      tenant: r.tenant,
      store: r.store,
      version: Number(r.version),
      hash: r.hash,
      status: r.status as PolicyVersionStatus,
      author: r.author,
      message: r.message,
      createdAt: r.created_at,
      ...(r.reasons === null ? {} : { reasons: JSON.parse(r.reasons) as string[] }),
    }));
  }

  async stores(tenant: string, page: { limit: number; after: string | undefined }): Promise<PolicyStoreSummary[]> {
    let q = this.db
      .selectFrom('policy_versions')
      .select((eb) => [
        'store',
        eb.fn.max('version').as('latest'),
        eb.fn.max(eb.case().when('status', '=', 'active').then(eb.ref('version')).end()).as('active'),
      ])
      .where('tenant', '=', tenant);
    if (page.after !== undefined) q = q.where('store', '>', page.after);
    const rows = await q.groupBy('store').orderBy('store').limit(page.limit).execute();
    return rows.map((r) => ({
      store: r.store,
      latestVersion: Number(r.latest),
      activeVersion: r.active === null || r.active === undefined ? undefined : Number(r.active),
    }));
  }

  /**
   * Supersedes the active version and inserts the new one atomically: in the caller's
   * transaction, or in one of its own. The primary key and the partial unique index on active
   * versions make a concurrent second insert of one number, or a second activation, fail with
   * `authz.version_conflict` instead of leaving two versions or two active ones; the caller's
   * transaction is then spoiled and may be retried whole.
   */
  async insert(v: PolicyVersionRecord): Promise<void> {
    try {
      await this.#insert(v);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AuthzError('authz.version_conflict', `version ${v.version} of policy store "${v.store}" exists`, { cause: err });
      throw err;
    }
  }

  async #insert(v: PolicyVersionRecord): Promise<void> {
    if (!this.db.isTransaction) {
      await this.db.transaction().execute((trx) => new SqlPolicyStore(trx, this.dialect).#insert(v));
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
        tests: v.tests === undefined ? null : JSON.stringify(v.tests),
        reasons: v.reasons === undefined ? null : JSON.stringify(v.reasons),
      })
      .execute();
  }

  /**
   * SQLite has one writer, so the transaction already excludes every other change. PostgreSQL
   * locks the active version's row: a concurrent change waits for this transaction, then reads
   * the number it committed (read committed: each statement sees the latest commits). A store without an active version has no row to lock; its racing
   * first versions meet the primary key instead (`authz.version_conflict`, retried by the caller).
   */
  async nextVersion(tenant: string, store: string): Promise<number> {
    if (this.dialect === 'postgres') {
      // A waiter is released when the holder commits, by when the row it waited for is no
      // longer the active one: it locks the new active row, until it holds the current one.
      for (;;) {
        const locked = await this.activeRow(tenant, store).forUpdate().executeTakeFirst();
        if (locked || !(await this.activeRow(tenant, store).executeTakeFirst())) break;
      }
    }
    return (await this.latestVersion(tenant, store)) + 1;
  }

  private activeRow(tenant: string, store: string) {
    return this.db.selectFrom('policy_versions').select('version').where('tenant', '=', tenant).where('store', '=', store).where('status', '=', 'active');
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

function recordOf(r: Selectable<PolicyVersionsTable>): PolicyVersionRecord {
  return {
    tenant: r.tenant,
    store: r.store,
    version: Number(r.version),
    hash: r.hash,
    policies: JSON.parse(r.policies) as Record<string, string>,
    schema: r.schema,
    status: r.status as PolicyVersionStatus,
    author: r.author,
    message: r.message,
    createdAt: r.created_at,
    ...(r.tests === null ? {} : { tests: JSON.parse(r.tests) as Record<string, string> }),
    ...(r.reasons === null ? {} : { reasons: JSON.parse(r.reasons) as string[] }),
  };
}
