import { type Kysely, sql } from 'kysely';
import type { TokenRecord, TokenStore } from '../identity/store.js';
import { PreparedQuery } from './prepared-query.js';
import type { Database } from './schema.js';
import { cidrColumn, cidrsOfColumn } from './cidr-column.js';

/** Every authenticated request looks its token up by accessor (when the token cache misses). */
const tokenByAccessor = new PreparedQuery((db, p: { accessor: string }) => db.selectFrom('tokens').selectAll().where('accessor', '=', p.accessor));

export class SqlTokenStore implements TokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(t: TokenRecord): Promise<void> {
    await this.db
      .insertInto('tokens')
      .values({
        accessor: t.accessor,
        tenant: t.tenant,
        secret_hash: t.secretHash,
        policies: JSON.stringify(t.policies),
        display_name: t.displayName,
        created_by: t.createdBy,
        created_at: t.createdAt,
        expires_at: t.expiresAt,
        revoked_at: t.revokedAt,
        parent: t.parent ?? null,
        period: t.period ?? null,
        creation_ttl: t.creationTtl ?? null,
        explicit_max_expires_at: t.explicitMaxExpiresAt ?? null,
        renewable: t.renewable === undefined ? null : t.renewable ? 1 : 0,
        num_uses: t.numUses ?? null,
        uses_left: t.usesLeft ?? null,
        role: t.role ?? null,
        creation_path: t.creationPath ?? null,
        bound_cidrs: cidrColumn(t.boundCidrs),
      })
      .execute();
  }

  async get(accessor: string): Promise<TokenRecord | undefined> {
    const [r] = await tokenByAccessor.execute(this.db, { accessor });
    if (!r) return undefined;
    return {
      accessor: r.accessor,
      tenant: r.tenant,
      secretHash: r.secret_hash,
      policies: JSON.parse(r.policies) as string[],
      displayName: r.display_name,
      createdBy: r.created_by,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      revokedAt: r.revoked_at,
      // Vault token fields (migration 0014): left out when unset, as records without them were written.
      ...(r.parent === null ? {} : { parent: r.parent }),
      ...(r.period === null ? {} : { period: Number(r.period) }),
      ...(r.creation_ttl === null ? {} : { creationTtl: Number(r.creation_ttl) }),
      ...(r.explicit_max_expires_at === null ? {} : { explicitMaxExpiresAt: r.explicit_max_expires_at }),
      ...(r.renewable === null ? {} : { renewable: Number(r.renewable) === 1 }),
      // Migration 0023: use limits and token roles.
      ...(r.num_uses === null ? {} : { numUses: Number(r.num_uses), usesLeft: Number(r.uses_left ?? 0) }),
      ...(r.role === null ? {} : { role: r.role }),
      ...(r.creation_path === null ? {} : { creationPath: r.creation_path }),
      ...(r.bound_cidrs === null ? {} : { boundCidrs: cidrsOfColumn(r.bound_cidrs) }),
    };
  }

  async revoke(tenant: string, accessor: string, at: string): Promise<boolean> {
    const found = await this.db
      .selectFrom('tokens')
      .select('revoked_at')
      .where('tenant', '=', tenant)
      .where('accessor', '=', accessor)
      .executeTakeFirst();
    if (!found) return false;
    // Revoking twice keeps the first revocation time.
    await this.db
      .updateTable('tokens')
      .set({ revoked_at: at })
      .where('tenant', '=', tenant)
      .where('accessor', '=', accessor)
      .where('revoked_at', 'is', null)
      .execute();
    return true;
  }

  async children(tenant: string, accessor: string): Promise<string[]> {
    const rows = await this.db.selectFrom('tokens').select('accessor').where('tenant', '=', tenant).where('parent', '=', accessor).orderBy('accessor').execute();
    return rows.map((r) => r.accessor);
  }

  async renew(tenant: string, accessor: string, expiresAt: string): Promise<boolean> {
    const r = await this.db
      .updateTable('tokens')
      .set({ expires_at: expiresAt })
      .where('tenant', '=', tenant)
      .where('accessor', '=', accessor)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async spendUse(accessor: string, at: string): Promise<number | undefined> {
    // One statement: both engines evaluate the SET expressions on the row as it was, and the
    // WHERE clause re-checks it under the row lock, so exactly `uses_left` callers ever succeed.
    const r = await this.db
      .updateTable('tokens')
      .set({
        uses_left: sql<number>`uses_left - 1`,
        revoked_at: sql<string | null>`case when uses_left = 1 then ${at} else null end`,
      })
      .where('accessor', '=', accessor)
      .where('revoked_at', 'is', null)
      .where('uses_left', '>', 0)
      .returning('uses_left')
      .executeTakeFirst();
    return r === undefined || r.uses_left === null ? undefined : Number(r.uses_left);
  }
}
