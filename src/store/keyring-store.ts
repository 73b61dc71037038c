import type { Kysely } from 'kysely';
import type { KeyringStore } from '../secrets/store.js';
import type { Database } from './schema.js';

export class SqlKeyringStore implements KeyringStore {
  constructor(private readonly db: Kysely<Database>) {}

  async load(): Promise<string | undefined> {
    const row = await this.db.selectFrom('barrier_keyring').select('ciphertext').where('id', '=', 1).executeTakeFirst();
    return row?.ciphertext;
  }

  async initialize(ciphertext: string, at: string): Promise<boolean> {
    const result = await this.db
      .insertInto('barrier_keyring')
      .values({ id: 1, ciphertext, updated_at: at })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }
}
