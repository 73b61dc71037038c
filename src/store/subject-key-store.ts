import type { Kysely } from 'kysely';
import type { SubjectKeyStore } from '../audit/subjects.js';
import type { Database } from './schema.js';

export class SqlSubjectKeyStore implements SubjectKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  async active(tenant: string, ref: string): Promise<{ keyId: string; sealedKey: string } | undefined> {
    const row = await this.db
      .selectFrom('audit_subject_keys')
      .select(['key_id', 'sealed_key'])
      .where('tenant', '=', tenant)
      .where('subject_ref', '=', ref)
      .where('sealed_key', 'is not', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
    return row?.sealed_key ? { keyId: row.key_id, sealedKey: row.sealed_key } : undefined;
  }

  async get(tenant: string, keyId: string): Promise<string | null | undefined> {
    const row = await this.db.selectFrom('audit_subject_keys').select('sealed_key').where('tenant', '=', tenant).where('key_id', '=', keyId).executeTakeFirst();
    return row === undefined ? undefined : row.sealed_key;
  }

  async insert(tenant: string, ref: string, keyId: string, sealedKey: string, at: string): Promise<void> {
    await this.db
      .insertInto('audit_subject_keys')
      .values({ key_id: keyId, tenant, subject_ref: ref, sealed_key: sealedKey, created_at: at, erased_at: null })
      .execute();
  }

  async erase(tenant: string, ref: string, at: string): Promise<number> {
    const result = await this.db
      .updateTable('audit_subject_keys')
      .set({ sealed_key: null, erased_at: at })
      .where('tenant', '=', tenant)
      .where('subject_ref', '=', ref)
      .where('sealed_key', 'is not', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}
