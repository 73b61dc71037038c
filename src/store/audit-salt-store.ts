import type { Kysely } from 'kysely';
import type { AuditSaltStore } from '../audit/hasher.js';
import type { Database } from './schema.js';

export class SqlAuditSaltStore implements AuditSaltStore {
  constructor(private readonly db: Kysely<Database>) {}

  async load(): Promise<string | undefined> {
    const row = await this.db.selectFrom('audit_salt').select('ciphertext').where('id', '=', 1).executeTakeFirst();
    return row?.ciphertext;
  }

  async create(sealed: string, at: string): Promise<string> {
    await this.db
      .insertInto('audit_salt')
      .values({ id: 1, ciphertext: sealed, created_at: at })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    const stored = await this.load();
    if (stored === undefined) throw new Error('the audit salt vanished after it was created');
    return stored;
  }
}
