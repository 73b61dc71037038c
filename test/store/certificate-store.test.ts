import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { IssuedCertificate } from '../../src/pki/store.js';
import { SqlCertificateStore } from '../../src/store/certificate-store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suite for the CertificateStore port (src/pki/store.ts) against every store in
 * TEST_DATABASES. Certificates are opaque text to the store, so the PEM here is a placeholder.
 */


const clock = new ManualClock();
const HOUR = 3_600_000;
const at = (hours: number) => new Date(clock.now().getTime() + hours * HOUR).toISOString();
const ISSUER = 'aa'.repeat(20);

function cert(serialNumber: string, tenant: string, spiffeId: string, notAfterHours: number, issuer = ISSUER): IssuedCertificate {
  return {
    serialNumber,
    tenant,
    spiffeId,
    issuer,
    notBefore: at(0),
    notAfter: at(notAfterHours),
    certificatePem: `-----BEGIN CERTIFICATE-----\n${serialNumber}\n-----END CERTIFICATE-----\n`,
    issuedAt: at(0),
    revokedAt: null,
    revocationReason: null,
  };
}

describe.each(TEST_DATABASES)('CertificateStore on $name', (target) => {
  const database = freshDatabase(target);
  const store = () => new SqlCertificateStore(database().db);
  const api = 'spiffe://acme.rampart.local/api';

  beforeAll(async () => {
    const tenants = new SqlTenantStore(database().db);
    for (const name of ['acme', 'globex']) await tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: at(0) });
    for (const c of [
      cert('01', 'acme', api, 1),
      cert('02', 'acme', api, 2),
      cert('03', 'acme', api, -1),
      cert('04', 'acme', 'spiffe://acme.rampart.local/db', 1),
      cert('05', 'globex', api, 1),
      cert('06', 'acme', api, 1, 'bb'.repeat(20)),
    ]) {
      await store().insert(c);
    }
  });

  it('returns a certificate only to the tenant that owns it, every field intact', async () => {
    expect(await store().get('acme', '01')).toEqual(cert('01', 'acme', api, 1));
    expect(await store().get('globex', '01')).toBeUndefined();
    expect(await store().get('acme', '05')).toBeUndefined();
    expect(await store().get('acme', 'ff')).toBeUndefined();
  });

  it('refuses a duplicate serial and a tenant that does not exist', async () => {
    await expect(store().insert(cert('01', 'globex', api, 1))).rejects.toThrow();
    await expect(store().insert(cert('99', 'nobody', api, 1))).rejects.toThrow();
    expect(await store().get('acme', '01')).toEqual(cert('01', 'acme', api, 1));
  });

  it("lists a tenant's unexpired certificates of one SPIFFE ID", async () => {
    expect((await store().unexpiredFor('acme', api, at(0))).map((c) => c.serialNumber)).toEqual(['01', '02', '06']);
    expect((await store().unexpiredFor('acme', api, at(1.5))).map((c) => c.serialNumber)).toEqual(['02']);
    expect((await store().unexpiredFor('globex', api, at(0))).map((c) => c.serialNumber)).toEqual(['05']);
  });

  it("revokes only the tenant's own, not-yet-revoked certificates, and keeps the first revocation", async () => {
    expect(await store().revoke('globex', ['01', '02'], at(0), 'keyCompromise')).toEqual([]);
    expect((await store().get('acme', '01'))?.revokedAt).toBeNull();
    expect(await store().revoke('acme', ['02', '01', '05'], at(0), 'keyCompromise')).toEqual(['01', '02']);
    expect(await store().revoke('acme', ['01', '03'], at(0.5), 'superseded')).toEqual(['03']);
    expect(await store().get('acme', '01')).toMatchObject({ revokedAt: at(0), revocationReason: 'keyCompromise' });
    expect((await store().get('globex', '05'))?.revokedAt).toBeNull();
    expect(await store().revoke('acme', [], at(0), 'superseded')).toEqual([]);
  });

  it('finds any tenant’s certificate by issuer and serial, and lists an issuer’s unexpired revocations', async () => {
    expect((await store().byIssuer(ISSUER, '05'))?.tenant).toBe('globex');
    expect(await store().byIssuer('bb'.repeat(20), '05')).toBeUndefined();
    expect(await store().revokedUnexpired(ISSUER, at(0))).toEqual([
      { serialNumber: '01', revokedAt: at(0), reason: 'keyCompromise', notAfter: at(1) },
      { serialNumber: '02', revokedAt: at(0), reason: 'keyCompromise', notAfter: at(2) },
    ]);
    expect((await store().revokedUnexpired(ISSUER, at(1))).map((e) => e.serialNumber)).toEqual(['02']);
    expect(await store().revokedUnexpired('bb'.repeat(20), at(0))).toEqual([]);
  });

  it('hands out CRL numbers 1, 2, 3… per issuer and counts revisions separately', async () => {
    const other = 'cc'.repeat(20);
    expect(await store().crlRevision(other)).toBe(0);
    expect(await store().nextCrlNumber(other, at(0))).toBe(1);
    expect(await store().nextCrlNumber(other, at(0))).toBe(2);
    await store().touchRevocations(other, at(0));
    await store().touchRevocations(other, at(0));
    expect(await store().crlRevision(other)).toBe(2);
    expect(await store().nextCrlNumber(other, at(0))).toBe(3);
    expect(await store().nextCrlNumber('dd'.repeat(20), at(0))).toBe(1);
    await store().touchRevocations('ee'.repeat(20), at(0));
    expect(await store().crlRevision('ee'.repeat(20))).toBe(1);
    expect(await store().nextCrlNumber('ee'.repeat(20), at(0))).toBe(1);
  });

  it("answers an issuer's last expiry across tenants, and nothing for an issuer that issued none", async () => {
    expect(await store().lastExpiry(ISSUER)).toBe(at(2));
    expect(await store().lastExpiry('bb'.repeat(20))).toBe(at(1));
    expect(await store().lastExpiry('ff'.repeat(20))).toBeUndefined();
  });
});
