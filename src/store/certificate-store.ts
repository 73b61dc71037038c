import type { Kysely, Selectable } from 'kysely';
import type { CertificateStore, IssuedCertificate, RevocationReason, RevokedCertificate } from '../pki/store.js';
import type { Database, PkiCertificatesTable } from './schema.js';

function fromRow(r: Selectable<PkiCertificatesTable>): IssuedCertificate {
  return {
    serialNumber: r.serial_number,
    tenant: r.tenant,
    spiffeId: r.spiffe_id,
    issuer: r.issuer,
    notBefore: r.not_before,
    notAfter: r.not_after,
    certificatePem: r.certificate_pem,
    issuedAt: r.issued_at,
    revokedAt: r.revoked_at,
    revocationReason: r.revocation_reason as RevocationReason | null,
  };
}

/** PostgreSQL returns `integer` as a number, but be explicit: counters are read as numbers. */
const toNumber = (v: number | string | bigint): number => Number(v);

export class SqlCertificateStore implements CertificateStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(r: IssuedCertificate): Promise<void> {
    await this.db
      .insertInto('pki_certificates')
      .values({
        serial_number: r.serialNumber,
        tenant: r.tenant,
        spiffe_id: r.spiffeId,
        issuer: r.issuer,
        not_before: r.notBefore,
        not_after: r.notAfter,
        certificate_pem: r.certificatePem,
        issued_at: r.issuedAt,
        revoked_at: r.revokedAt,
        revocation_reason: r.revocationReason,
      })
      .execute();
  }

  async get(tenant: string, serialNumber: string): Promise<IssuedCertificate | undefined> {
    const row = await this.db.selectFrom('pki_certificates').selectAll().where('tenant', '=', tenant).where('serial_number', '=', serialNumber).executeTakeFirst();
    return row && fromRow(row);
  }

  async unexpiredFor(tenant: string, spiffeId: string, now: string): Promise<IssuedCertificate[]> {
    const rows = await this.db
      .selectFrom('pki_certificates')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('spiffe_id', '=', spiffeId)
      .where('not_after', '>', now)
      .orderBy('issued_at')
      .orderBy('serial_number')
      .execute();
    return rows.map(fromRow);
  }

  async revoke(tenant: string, serialNumbers: readonly string[], at: string, reason: RevocationReason): Promise<string[]> {
    if (serialNumbers.length === 0) return [];
    const rows = await this.db
      .updateTable('pki_certificates')
      .set({ revoked_at: at, revocation_reason: reason })
      .where('tenant', '=', tenant)
      .where('serial_number', 'in', serialNumbers)
      .where('revoked_at', 'is', null)
      .returning('serial_number')
      .execute();
    return rows.map((r) => r.serial_number).sort();
  }

  async byIssuer(issuer: string, serialNumber: string): Promise<IssuedCertificate | undefined> {
    const row = await this.db.selectFrom('pki_certificates').selectAll().where('issuer', '=', issuer).where('serial_number', '=', serialNumber).executeTakeFirst();
    return row && fromRow(row);
  }

  async revokedUnexpired(issuer: string, now: string): Promise<RevokedCertificate[]> {
    const rows = await this.db
      .selectFrom('pki_certificates')
      .select(['serial_number', 'revoked_at', 'revocation_reason', 'not_after'])
      .where('issuer', '=', issuer)
      .where('revoked_at', 'is not', null)
      .where('not_after', '>', now)
      .orderBy('serial_number')
      .execute();
    return rows.map((r) => ({
      serialNumber: r.serial_number,
      revokedAt: r.revoked_at ?? '',
      reason: (r.revocation_reason ?? 'unspecified') as RevocationReason,
      notAfter: r.not_after,
    }));
  }

  async touchRevocations(issuer: string, at: string): Promise<void> {
    await this.db
      .insertInto('pki_crl_state')
      .values({ issuer, crl_number: 0, revision: 1, updated_at: at })
      .onConflict((oc) => oc.column('issuer').doUpdateSet((eb) => ({ revision: eb('pki_crl_state.revision', '+', 1), updated_at: at })))
      .execute();
  }

  async crlRevision(issuer: string): Promise<number> {
    const row = await this.db.selectFrom('pki_crl_state').select('revision').where('issuer', '=', issuer).executeTakeFirst();
    return row === undefined ? 0 : toNumber(row.revision);
  }

  async nextCrlNumber(issuer: string, at: string): Promise<number> {
    const row = await this.db
      .insertInto('pki_crl_state')
      .values({ issuer, crl_number: 1, revision: 0, updated_at: at })
      .onConflict((oc) => oc.column('issuer').doUpdateSet((eb) => ({ crl_number: eb('pki_crl_state.crl_number', '+', 1), updated_at: at })))
      .returning('crl_number')
      .executeTakeFirstOrThrow();
    return toNumber(row.crl_number);
  }

  async lastExpiry(issuer: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('pki_certificates').select((eb) => eb.fn.max('not_after').as('last')).where('issuer', '=', issuer).executeTakeFirst();
    return row?.last ?? undefined;
  }
}
