import { type Kysely, PostgresAdapter, type RawBuilder, sql } from 'kysely';
import type { Kv1Entry, Kv1Store } from '../secrets/kv1/store.js';
import { type PathStart, prefixEnd } from '../secrets/list-keys.js';
import type { Database } from './schema.js';

export class SqlKv1Store implements Kv1Store {
  /**
   * `path` compared and ordered by code point: SQLite's default BINARY collation does so; on
   * PostgreSQL the database's collation may be a locale that ignores punctuation such as `/`,
   * under which a folder's paths are neither contiguous nor bounded by `prefixEnd`, so "C" is
   * named. (The primary key then narrows by tenant and mount only, when that collation is not C.)
   */
  private readonly path: RawBuilder<string>;

  constructor(private readonly db: Kysely<Database>) {
    this.path = db.getExecutor().adapter instanceof PostgresAdapter ? sql<string>`path collate "C"` : sql<string>`path`;
  }

  async get(tenant: string, mount: string, path: string): Promise<Kv1Entry | undefined> {
    const r = await this.db.selectFrom('kv1_entries').selectAll().where('tenant', '=', tenant).where('mount', '=', mount).where('path', '=', path).executeTakeFirst();
    return r && { tenant: r.tenant, mount: r.mount, path: r.path, ciphertext: r.ciphertext, createdAt: r.created_at, updatedAt: r.updated_at };
  }

  async put(e: Kv1Entry): Promise<void> {
    await this.db
      .insertInto('kv1_entries')
      .values({ tenant: e.tenant, mount: e.mount, path: e.path, ciphertext: e.ciphertext, created_at: e.createdAt, updated_at: e.updatedAt })
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'path']).doUpdateSet({ ciphertext: e.ciphertext, updated_at: e.updatedAt }))
      .execute();
  }

  async delete(tenant: string, mount: string, path: string): Promise<boolean> {
    const r = await this.db.deleteFrom('kv1_entries').where('tenant', '=', tenant).where('mount', '=', mount).where('path', '=', path).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async paths(tenant: string, mount: string, prefix: string, page?: PathStart & { readonly limit: number }): Promise<string[]> {
    // A range, not LIKE (SQLite's ignores ASCII case, and % and _ are wildcards) nor substr (its
    // length counts characters where a JS length counts UTF-16 code units).
    let q = this.db.selectFrom('kv1_entries').select('path').where('tenant', '=', tenant).where('mount', '=', mount);
    const end = prefixEnd(prefix);
    if (prefix !== '') q = q.where(this.path, '>=', prefix);
    if (end !== undefined) q = q.where(this.path, '<', end);
    if (page?.after !== undefined) q = q.where(this.path, '>', page.after);
    if (page?.from !== undefined) q = q.where(this.path, '>=', page.from);
    const rows = await (page ? q.orderBy(this.path).limit(page.limit) : q.orderBy(this.path)).execute();
    return rows.map((r) => r.path);
  }

  async purgeMount(tenant: string, mount: string): Promise<void> {
    await this.db.deleteFrom('kv1_entries').where('tenant', '=', tenant).where('mount', '=', mount).execute();
  }
}
