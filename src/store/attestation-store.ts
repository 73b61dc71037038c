import type { Kysely } from 'kysely';
import type { AgentStore, AttestationMethod, AttestedAgent } from '../pki/attestation-store.js';
import type { JoinTokenRecord, JoinTokenStore } from '../pki/join-token-store.js';
import type { Database } from './schema.js';

export class SqlJoinTokenStore implements JoinTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(r: JoinTokenRecord): Promise<void> {
    await this.db
      .insertInto('pki_join_tokens')
      .values({
        id: r.id,
        tenant: r.tenant,
        secret_hash: r.secretHash,
        spiffe_id: r.spiffeId,
        created_at: r.createdAt,
        created_by: r.createdBy,
        expires_at: r.expiresAt,
        used_at: r.usedAt,
        used_by: r.usedBy,
      })
      .execute();
  }

  async get(id: string): Promise<JoinTokenRecord | undefined> {
    const r = await this.db.selectFrom('pki_join_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    return {
      id: r.id,
      tenant: r.tenant,
      secretHash: r.secret_hash,
      spiffeId: r.spiffe_id,
      createdAt: r.created_at,
      createdBy: r.created_by,
      expiresAt: r.expires_at,
      usedAt: r.used_at,
      usedBy: r.used_by,
    };
  }

  async consume(id: string, at: string, usedBy: string): Promise<boolean> {
    // One statement: PostgreSQL re-checks `used_at is null` after waiting on a concurrent update's row lock.
    const r = await this.db.updateTable('pki_join_tokens').set({ used_at: at, used_by: usedBy }).where('id', '=', id).where('used_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }
}

export class SqlAgentStore implements AgentStore {
  constructor(private readonly db: Kysely<Database>) {}

  async upsert(a: AttestedAgent): Promise<void> {
    const values = { tenant: a.tenant, spiffe_id: a.spiffeId, method: a.method, selectors: JSON.stringify(a.selectors), attested_at: a.attestedAt };
    await this.db
      .insertInto('pki_agents')
      .values(values)
      .onConflict((oc) => oc.columns(['tenant', 'spiffe_id']).doUpdateSet({ method: values.method, selectors: values.selectors, attested_at: values.attested_at }))
      .execute();
  }

  async get(tenant: string, spiffeId: string): Promise<AttestedAgent | undefined> {
    const r = await this.db.selectFrom('pki_agents').selectAll().where('tenant', '=', tenant).where('spiffe_id', '=', spiffeId).executeTakeFirst();
    if (!r) return undefined;
    return { tenant: r.tenant, spiffeId: r.spiffe_id, method: r.method as AttestationMethod, selectors: JSON.parse(r.selectors) as string[], attestedAt: r.attested_at };
  }
}
