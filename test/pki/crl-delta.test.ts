import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { type CertificateAuthority, createIntermediateCa, createRootCa } from '../../src/pki/ca.js';
import { CRL_VALIDITY_MS, CrlPublisher, DELTA_CRL_VALIDITY_MS, type PublishedCrl } from '../../src/pki/crl.js';
import { canonicalSerial, issuerKeyId } from '../../src/pki/issuer.js';
import { revokeCertificates } from '../../src/pki/revocation.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { type Stores, bindStores } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * Delta CRLs (RFC 5280 §5.2.4) and the Freshest CRL extension that points at them (§5.2.6), over
 * the real certificate store, change log and CRL base store, on SQLite and PostgreSQL. The wire
 * format is checked by openssl in test/interop/pki-delta.test.ts; here the rules: which base a
 * delta names, what it lists, and that base ∪ delta is always every revoked unexpired serial.
 */

const MINUTE = 60_000;
const DELTA_INDICATOR = '2.5.29.27';
const FRESHEST_CRL = '2.5.29.46';
const CRL_NUMBER = '2.5.29.20';

const serialsOf = (crl: PublishedCrl): string[] => new x509.X509Crl(crl.der).entries.map((e) => canonicalSerial(e.serialNumber)!).sort();
const extensionOf = (crl: PublishedCrl, oid: string) => new x509.X509Crl(crl.der).extensions.find((e) => e.type === oid);
/** The INTEGER inside an extension value (CRL number, base CRL number). */
const integerIn = (value: ArrayBuffer): number => Number.parseInt(Buffer.from(value).subarray(2).toString('hex'), 16);

/** A positive serial whose DER content is exactly its hex (no padding octet needed). */
const randomSerial = (): string => {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return bytes.toString('hex');
};

describe.each(TEST_DATABASES)('delta CRLs ($name)', (testDatabase) => {
  let database: StoreDatabase;
  let stores: Stores;
  let root: CertificateAuthority;
  let dataDir: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const created = await testDatabase.create();
    drop = created.drop;
    dataDir = mkdtempSync(join(tmpdir(), 'rampart-crl-delta-'));
    database = await openDatabase({ databaseUrl: created.url, dataDir, inMemory: true });
    stores = bindStores(database.db, database.dialect);
    if (!(await stores.tenants.get('acme'))) await stores.tenants.create({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt: new Date().toISOString() });
    root = await createRootCa({ commonName: 'Delta Test Root', clock: new ManualClock(Date.UTC(2026, 0, 1)) });
  });
  afterAll(async () => {
    await database?.close();
    await drop?.();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** A fresh issuing CA, clock and publisher, so that runs share no CRL state. */
  async function fixture(start = Date.UTC(2026, 0, 1)) {
    const clock = new ManualClock(start);
    const issuer = await createIntermediateCa(root, { commonName: 'Delta Test Intermediate', clock });
    const id = issuerKeyId(issuer);
    const crls = new CrlPublisher(issuer, stores.certificates, clock, { bases: stores.crlBases, deltaUrl: `https://h/v1/pki/issuers/${id}/crl/delta` });
    const issue = async (ttlMs: number): Promise<string> => {
      const serialNumber = randomSerial();
      const now = clock.now();
      await stores.certificates.insert({
        serialNumber,
        tenant: 'acme',
        spiffeId: 'spiffe://acme.rampart.local/svc',
        issuer: id,
        notBefore: now.toISOString(),
        notAfter: new Date(now.getTime() + ttlMs).toISOString(),
        certificatePem: '(not needed by the CRL)',
        issuedAt: now.toISOString(),
        revokedAt: null,
        revocationReason: null,
      });
      return serialNumber;
    };
    const revoke = (serialNumber: string) =>
      database.db.transaction().execute((trx) => {
        const tx = bindStores(trx, database.dialect);
        return revokeCertificates(tx.certificates, clock, 'acme', { serialNumber }, 'keyCompromise', tx.pkiEvents);
      });
    return { clock, issuer, id, crls, issue, revoke };
  }

  it('points the complete CRL at its delta and marks the delta with a critical indicator naming the base', async () => {
    const { crls, id, issue, revoke } = await fixture();
    const early = await issue(60 * MINUTE);
    await revoke(early);
    const base = await crls.current();
    const freshest = extensionOf(base, FRESHEST_CRL)!;
    expect(freshest.critical).toBe(false);
    expect(Buffer.from(freshest.value).toString('latin1')).toContain(`https://h/v1/pki/issuers/${id}/crl/delta`);
    expect(extensionOf(base, DELTA_INDICATOR)).toBeUndefined();

    const late = await issue(60 * MINUTE);
    await revoke(late);
    const delta = await crls.delta();
    const indicator = extensionOf(delta, DELTA_INDICATOR)!;
    expect(indicator.critical).toBe(true);
    expect(integerIn(indicator.value)).toBe(base.number);
    expect(delta.baseCrlNumber).toBe(base.number);
    // One number sequence for complete and delta CRLs (§5.2.4), the delta's above its base.
    expect(integerIn(extensionOf(delta, CRL_NUMBER)!.value)).toBe(delta.number);
    expect(delta.number).toBeGreaterThan(base.number);
    // Only what was revoked after the base; the base already had the first one.
    expect(serialsOf(delta)).toEqual([late]);
    expect(serialsOf(base)).toEqual([early]);
    expect(delta.nextUpdate.getTime() - delta.thisUpdate.getTime()).toBe(DELTA_CRL_VALIDITY_MS);
    expect(extensionOf(delta, FRESHEST_CRL)).toBeUndefined();
  });

  it('keeps naming the oldest complete CRL still valid, then moves on once it lapses', async () => {
    const { clock, crls, issue, revoke } = await fixture();
    const first = await crls.current();
    const a = await issue(5 * 60 * MINUTE);
    await revoke(a);
    const second = await crls.current(); // rebuilt: the revocation moved the revision
    expect(second.number).toBeGreaterThan(first.number);
    expect(serialsOf(second)).toEqual([a]);
    // A client may still hold the first base: the delta names it and lists `a`.
    const delta = await crls.delta();
    expect(delta.baseCrlNumber).toBe(first.number);
    expect(serialsOf(delta)).toEqual([a]);
    // Reused while nothing changes and it is fresh.
    expect((await crls.delta()).number).toBe(delta.number);

    clock.advance(CRL_VALIDITY_MS + MINUTE); // both bases lapsed
    const later = await crls.delta();
    expect(later.baseCrlNumber).toBeGreaterThan(second.number);
    expect(serialsOf(later)).toEqual([]);
  });

  it('is rebuilt as soon as a revocation commits, and leaves expired certificates out', async () => {
    const { clock, crls, issue, revoke } = await fixture();
    await crls.current();
    const brief = await issue(2 * MINUTE);
    const long = await issue(60 * MINUTE);
    const before = await crls.delta();
    expect(serialsOf(before)).toEqual([]);
    await revoke(brief);
    await revoke(long);
    const after = await crls.delta();
    expect(after.number).toBeGreaterThan(before.number);
    expect(serialsOf(after)).toEqual([brief, long].sort());
    clock.advance(3 * MINUTE); // `brief` expired; half the delta's validity passed
    expect(serialsOf(await crls.delta())).toEqual([long]);
  });

  it('refuses to serve a delta from a publisher made without a base store', async () => {
    const { issuer, clock } = await fixture();
    await expect(new CrlPublisher(issuer, stores.certificates, clock).delta()).rejects.toThrow(RangeError);
  });

  it('base ∪ delta is exactly the revoked unexpired serials, for any base a client may still hold (property)', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('issue' as const), ttl: fc.integer({ min: 1, max: 180 }).map((m) => m * MINUTE) }),
      fc.record({ kind: fc.constant('revoke' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 50 }).map((m) => m * MINUTE) }),
      fc.record({ kind: fc.constant('fetch' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const { clock, crls, issue, revoke } = await fixture();
        const notAfter = new Map<string, number>();
        const revoked = new Set<string>();
        const held: PublishedCrl[] = [await crls.current()];
        const check = async () => {
          const now = clock.now().getTime();
          const full = [...revoked].filter((s) => notAfter.get(s)! > now).sort();
          // A client can always fetch the current complete CRL; it may also hold older ones.
          held.push(await crls.current());
          const delta = await crls.delta();
          const deltaSerials = serialsOf(delta);
          // The delta lists nothing that is not revoked and unexpired...
          for (const s of deltaSerials) expect(full).toContain(s);
          // ...and with any complete CRL a client may hold that it applies to (§5.2.4: base
          // number at most the held CRL's, held CRL still valid), covers every one of them.
          const usable = held.filter((b) => b.number >= delta.baseCrlNumber! && b.nextUpdate.getTime() > now);
          expect(usable.length).toBeGreaterThan(0);
          for (const base of usable) {
            const union = new Set([...serialsOf(base).filter((s) => notAfter.get(s)! > now), ...deltaSerials]);
            expect([...union].sort()).toEqual(full);
          }
        };
        for (const o of ops) {
          if (o.kind === 'issue') {
            const serial = await issue(o.ttl);
            notAfter.set(serial, clock.now().getTime() + o.ttl);
          } else if (o.kind === 'revoke') {
            const candidates = [...notAfter.keys()].filter((s) => !revoked.has(s) && notAfter.get(s)! > clock.now().getTime());
            if (candidates.length === 0) continue;
            const serial = candidates[o.pick % candidates.length]!;
            await revoke(serial);
            revoked.add(serial);
          } else if (o.kind === 'advance') {
            clock.advance(o.ms);
          } else {
            held.push(await crls.current());
          }
          await check();
        }
      }),
      { numRuns: 20 },
    );
  }, 120_000);
});
