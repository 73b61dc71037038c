import type { Kysely } from 'kysely';
import type { SealConfig, SecretsKeyringStore } from '../secrets/store.js';
import type { Dialect } from './database.js';
import type { Database } from './schema.js';

export class SqlSecretsKeyringStore implements SecretsKeyringStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async lockKeyring(): Promise<string | undefined> {
    let q = this.db.selectFrom('secrets_keyring').select('ciphertext').where('id', '=', 1);
    if (this.dialect === 'postgres') q = q.forUpdate();
    return (await q.executeTakeFirst())?.ciphertext;
  }

  async load(): Promise<string | undefined> {
    const row = await this.db.selectFrom('secrets_keyring').select('ciphertext').where('id', '=', 1).executeTakeFirst();
    return row?.ciphertext;
  }

  async initialize(ciphertext: string, at: string): Promise<boolean> {
    const result = await this.db
      .insertInto('secrets_keyring')
      .values({ id: 1, ciphertext, seal_type: 'file', secret_shares: 1, secret_threshold: 1, updated_at: at })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async replace(ciphertext: string, at: string): Promise<void> {
    await this.db.updateTable('secrets_keyring').set({ ciphertext, updated_at: at }).where('id', '=', 1).execute();
  }

  async sealConfig(): Promise<SealConfig | undefined> {
    const row = await this.db.selectFrom('secrets_keyring').select(['seal_type', 'secret_shares', 'secret_threshold']).where('id', '=', 1).executeTakeFirst();
    if (!row) return undefined;
    return { type: row.seal_type === 'shamir' ? 'shamir' : 'file', secretShares: row.secret_shares, secretThreshold: row.secret_threshold };
  }

  async setSealConfig(config: SealConfig, at: string): Promise<void> {
    await this.db
      .updateTable('secrets_keyring')
      .set({ seal_type: config.type, secret_shares: config.secretShares, secret_threshold: config.secretThreshold, updated_at: at })
      .where('id', '=', 1)
      .execute();
  }
}
