import type { Kysely, Selectable } from 'kysely';
import type { WrappedResponseRecord, WrappingStore } from '../secrets/wrapping/store.js';
import type { Database, VaultWrappedResponsesTable } from './schema.js';

export class SqlWrappingStore implements WrappingStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(r: WrappedResponseRecord): Promise<void> {
    await this.db
      .insertInto('vault_wrapped_responses')
      .values({
        accessor: r.accessor,
        tenant: r.tenant,
        secret_hash: r.secretHash,
        creation_path: r.creationPath,
        creation_time: r.creationTime,
        ttl: r.ttl,
        expires_at: r.expiresAt,
        wrapped_accessor: r.wrappedAccessor ?? null,
        ciphertext: r.ciphertext,
      })
      .execute();
  }

  async get(accessor: string): Promise<WrappedResponseRecord | undefined> {
    const r = await this.db.selectFrom('vault_wrapped_responses').selectAll().where('accessor', '=', accessor).executeTakeFirst();
    return r && toRecord(r);
  }

  async take(accessor: string): Promise<boolean> {
    const r = await this.db.deleteFrom('vault_wrapped_responses').where('accessor', '=', accessor).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  async purgeExpired(now: string): Promise<number> {
    const r = await this.db.deleteFrom('vault_wrapped_responses').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

function toRecord(r: Selectable<VaultWrappedResponsesTable>): WrappedResponseRecord {
  return {
    accessor: r.accessor,
    tenant: r.tenant,
    secretHash: r.secret_hash,
    creationPath: r.creation_path,
    creationTime: r.creation_time,
    ttl: Number(r.ttl),
    expiresAt: r.expires_at,
    wrappedAccessor: r.wrapped_accessor ?? undefined,
    ciphertext: r.ciphertext,
  };
}
