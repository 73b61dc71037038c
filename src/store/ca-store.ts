import type { Kysely } from 'kysely';
import type { CaRecord, CaRole, CaStore } from '../pki/store.js';
import type { Database } from './schema.js';

export class SqlCaStore implements CaStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(r: CaRecord): Promise<void> {
    await this.db
      .insertInto('ca_certificates')
      .values({
        id: r.id,
        tenant: r.tenant,
        role: r.role,
        certificate_pem: r.certificatePem,
        private_key: r.privateKey,
        algorithm: r.algorithm,
        status: r.status,
        not_after: r.notAfter,
        created_at: r.createdAt,
      })
      .execute();
  }

  async active(role: CaRole): Promise<CaRecord[]> {
    const rows = await this.db
      .selectFrom('ca_certificates')
      .selectAll()
      .where('role', '=', role)
      .where('status', '=', 'active')
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      tenant: r.tenant,
      role: r.role as CaRole,
      certificatePem: r.certificate_pem,
      privateKey: r.private_key,
      algorithm: r.algorithm,
      status: r.status as 'active' | 'retired',
      notAfter: r.not_after,
      createdAt: r.created_at,
    }));
  }
}
