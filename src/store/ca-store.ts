import type { Kysely, Selectable } from 'kysely';
import type { CaRecord, CaRole, CaStatus, CaStore } from '../pki/store.js';
import type { CaCertificatesTable, Database } from './schema.js';

function fromRow(r: Selectable<CaCertificatesTable>): CaRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    role: r.role as CaRole,
    certificatePem: r.certificate_pem,
    privateKey: r.private_key,
    algorithm: r.algorithm,
    status: r.status as CaStatus,
    notAfter: r.not_after,
    createdAt: r.created_at,
    activateAfter: r.activate_after,
  };
}

const BUNDLE_ROW = 'bundle';

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
        activate_after: r.activateAfter,
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
      .orderBy('id', 'desc')
      .execute();
    return rows.map(fromRow);
  }

  async unretired(): Promise<CaRecord[]> {
    const rows = await this.db.selectFrom('ca_certificates').selectAll().where('status', 'not in', ['retired', 'requested']).orderBy('created_at').orderBy('id').execute();
    return rows.map(fromRow);
  }

  async withStatus(status: CaStatus): Promise<CaRecord[]> {
    const rows = await this.db.selectFrom('ca_certificates').selectAll().where('status', '=', status).orderBy('created_at').orderBy('id').execute();
    return rows.map(fromRow);
  }

  async installCertificate(id: string, certificatePem: string, notAfter: string, activateAfter: string): Promise<boolean> {
    const result = await this.db
      .updateTable('ca_certificates')
      .set({ certificate_pem: certificatePem, not_after: notAfter, activate_after: activateAfter, status: 'prepared' })
      .where('id', '=', id)
      .where('status', '=', 'requested')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async get(id: string): Promise<CaRecord | undefined> {
    const row = await this.db.selectFrom('ca_certificates').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  async transition(id: string, from: CaStatus, to: CaStatus): Promise<boolean> {
    const result = await this.db.updateTable('ca_certificates').set({ status: to }).where('id', '=', id).where('status', '=', from).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async setPrivateKey(id: string, sealed: string | null): Promise<void> {
    await this.db.updateTable('ca_certificates').set({ private_key: sealed }).where('id', '=', id).execute();
  }

  async bundleSequence(): Promise<number> {
    const row = await this.db.selectFrom('pki_bundle_state').select('sequence').where('id', '=', BUNDLE_ROW).executeTakeFirst();
    return row === undefined ? 0 : Number(row.sequence);
  }

  async bumpBundleSequence(at: string): Promise<number> {
    const row = await this.db
      .insertInto('pki_bundle_state')
      .values({ id: BUNDLE_ROW, sequence: 1, updated_at: at })
      .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ sequence: eb('pki_bundle_state.sequence', '+', 1), updated_at: at })))
      .returning('sequence')
      .executeTakeFirstOrThrow();
    return Number(row.sequence);
  }
}
