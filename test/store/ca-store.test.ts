import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { CaRecord, CaRole } from '../../src/pki/store.js';
import { SqlCaStore } from '../../src/store/ca-store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suite for the CaStore port (src/pki/store.ts), against every store in TEST_DATABASES,
 * on a fresh database. The store treats certificates and keys as opaque text, so the records here
 * carry placeholder PEM and barrier-ciphertext strings rather than real certificates.
 */


const DAY_MS = 86_400_000;
const clock = new ManualClock();

/** A record created `dayOffset` days after the clock's start. */
function ca(id: string, role: CaRole, status: CaRecord['status'], dayOffset: number, privateKey: string | null = `rb1:1:${id}-key`): CaRecord {
  const created = new Date(clock.now().getTime() + dayOffset * DAY_MS);
  return {
    id,
    tenant: 'default',
    role,
    certificatePem: `-----BEGIN CERTIFICATE-----\n${Buffer.from(id).toString('base64')}\n-----END CERTIFICATE-----\n`,
    privateKey,
    algorithm: role === 'root' ? 'ECDSA-P384' : 'ECDSA-P256',
    status,
    notAfter: new Date(created.getTime() + 365 * DAY_MS).toISOString(),
    createdAt: created.toISOString(),
    activateAfter: null,
  };
}

describe.each(TEST_DATABASES)('CaStore on $name', (target) => {
  const database = freshDatabase(target);
  const cas = () => new SqlCaStore(database().db);

  const rootOld = ca('root-old', 'root', 'active', 1);
  const rootNew = ca('root-new', 'root', 'active', 30);
  const rootMid = ca('root-mid', 'root', 'active', 10, null);
  const rootRetired = ca('root-retired', 'root', 'retired', 40);
  const intOld = ca('int-old', 'intermediate', 'active', 2);
  const intNew = ca('int-new', 'intermediate', 'active', 31);
  const intRetired = ca('int-retired', 'intermediate', 'retired', 50);

  beforeAll(async () => {
    expect(await new SqlTenantStore(database().db).create({ name: 'default', trustDomain: 'default.rampart.local', createdAt: clock.now().toISOString() })).toBe(true);
  });

  it('has no active CAs initially', async () => {
    expect(await cas().active('root')).toEqual([]);
    expect(await cas().active('intermediate')).toEqual([]);
  });

  it('lists only active CAs of the requested role, newest first, every field intact', async () => {
    // Inserted in neither creation nor id order.
    for (const r of [rootMid, intRetired, rootOld, intNew, rootRetired, rootNew, intOld]) await cas().insert(r);
    expect(await cas().active('root')).toEqual([rootNew, rootMid, rootOld]);
    expect(await cas().active('intermediate')).toEqual([intNew, intOld]);
  });

  it('keeps a null private key null', async () => {
    const mid = (await cas().active('root')).find((r) => r.id === 'root-mid');
    expect(mid?.privateKey).toBeNull();
  });

  it('refuses a second record with an existing id and keeps the first', async () => {
    await expect(cas().insert({ ...rootOld, certificatePem: 'replaced', createdAt: ca('x', 'root', 'active', 99).createdAt })).rejects.toThrow();
    expect(await cas().active('root')).toEqual([rootNew, rootMid, rootOld]);
  });

  it('refuses a record for a tenant that does not exist', async () => {
    await expect(cas().insert({ ...ca('orphan', 'root', 'active', 100), tenant: 'nobody' })).rejects.toThrow();
    expect((await cas().active('root')).map((r) => r.id)).toEqual(['root-new', 'root-mid', 'root-old']);
  });

  it('orders by creation time, not by insertion or id', async () => {
    const newest = ca('a-newest', 'intermediate', 'active', 60);
    await cas().insert(newest);
    expect((await cas().active('intermediate')).map((r) => r.id)).toEqual(['a-newest', 'int-new', 'int-old']);
  });

  it('lists every unretired record, oldest first, for the trust bundle', async () => {
    expect((await cas().unretired()).map((r) => r.id)).toEqual(['root-old', 'int-old', 'root-mid', 'root-new', 'int-new', 'a-newest']);
  });

  it('keeps a prepared record with its activation time, and gets records by id', async () => {
    const prepared = { ...ca('int-prepared', 'intermediate', 'prepared', 70), activateAfter: new Date(clock.now().getTime() + 71 * DAY_MS).toISOString() };
    await cas().insert(prepared);
    expect(await cas().get('int-prepared')).toEqual(prepared);
    expect(await cas().get('nope')).toBeUndefined();
    expect((await cas().active('intermediate')).map((r) => r.id)).not.toContain('int-prepared');
  });

  it('makes a transition once: a second attempt from the old status changes nothing', async () => {
    expect(await cas().transition('int-prepared', 'prepared', 'active')).toBe(true);
    expect(await cas().transition('int-prepared', 'prepared', 'active')).toBe(false);
    expect(await cas().transition('int-prepared', 'previous', 'retired')).toBe(false);
    expect((await cas().get('int-prepared'))?.status).toBe('active');
    expect(await cas().transition('int-prepared', 'active', 'retired')).toBe(true);
    expect((await cas().unretired()).map((r) => r.id)).not.toContain('int-prepared');
  });

  it('removes and restores a private key', async () => {
    await cas().setPrivateKey('root-old', null);
    expect((await cas().get('root-old'))?.privateKey).toBeNull();
    await cas().setPrivateKey('root-old', 'rb1:1:again');
    expect((await cas().get('root-old'))?.privateKey).toBe('rb1:1:again');
  });

  it('counts the bundle sequence from 0, one step per bump', async () => {
    expect(await cas().bundleSequence()).toBe(0);
    expect(await cas().bumpBundleSequence(clock.now().toISOString())).toBe(1);
    expect(await cas().bumpBundleSequence(clock.now().toISOString())).toBe(2);
    expect(await cas().bundleSequence()).toBe(2);
  });
});
