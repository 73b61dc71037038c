import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { TenantRecord } from '../../src/identity/store.js';
import { type StoreDatabase } from '../../src/store/database.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suite for the TenantStore port (src/identity/store.ts), run against every store in
 * TEST_DATABASES. Each describe block gets its own fresh database (a WAL-mode file for SQLite, a
 * throwaway database for PostgreSQL).
 */


async function tenantRowCount(database: StoreDatabase): Promise<number> {
  const row = await database.db.selectFrom('tenants').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

describe.each(TEST_DATABASES)('TenantStore on $name', (target) => {
  describe('create and lookup', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlTenantStore(database().db);

    const acme: TenantRecord = { name: 'acme', trustDomain: 'acme.rampart.local', createdAt: clock.now().toISOString() };

    it('creates a tenant and reads it back by name and by trust domain', async () => {
      expect(await store().get('acme')).toBeUndefined();
      expect(await store().create(acme)).toBe(true);
      expect(await store().get('acme')).toEqual(acme);
      expect(await store().getByTrustDomain('acme.rampart.local')).toEqual(acme);
    });

    it('answers undefined for unknown names and trust domains, matching exactly', async () => {
      expect(await store().get('acm')).toBeUndefined();
      expect(await store().get('ACME')).toBeUndefined();
      expect(await store().get('acme.rampart.local')).toBeUndefined();
      expect(await store().getByTrustDomain('ACME.rampart.local')).toBeUndefined();
      expect(await store().getByTrustDomain('acme')).toBeUndefined();
      expect(await store().getByTrustDomain('acme.rampart.local.evil')).toBeUndefined();
    });

    it('refuses a second tenant with the same name and changes nothing', async () => {
      clock.advance(60_000);
      const before = await tenantRowCount(database());
      const impostor: TenantRecord = { name: 'acme', trustDomain: 'impostor.example', createdAt: clock.now().toISOString() };
      expect(await store().create(impostor)).toBe(false);
      expect(await store().get('acme')).toEqual(acme);
      expect(await store().getByTrustDomain('impostor.example')).toBeUndefined();
      expect(await tenantRowCount(database())).toBe(before);
    });

    it('refuses a second tenant with the same trust domain and changes nothing', async () => {
      clock.advance(60_000);
      const before = await tenantRowCount(database());
      const squatter: TenantRecord = { name: 'squatter', trustDomain: 'acme.rampart.local', createdAt: clock.now().toISOString() };
      expect(await store().create(squatter)).toBe(false);
      expect(await store().get('squatter')).toBeUndefined();
      expect(await store().getByTrustDomain('acme.rampart.local')).toEqual(acme);
      expect(await tenantRowCount(database())).toBe(before);
    });

    it('still creates tenants with a fresh name and trust domain afterwards', async () => {
      clock.advance(60_000);
      const globex: TenantRecord = { name: 'globex', trustDomain: 'globex.rampart.local', createdAt: clock.now().toISOString() };
      expect(await store().create(globex)).toBe(true);
      expect(await store().get('globex')).toEqual(globex);
      expect(await store().get('acme')).toEqual(acme);
      expect(await tenantRowCount(database())).toBe(2);
    });

    it('lets exactly one of several concurrent creates of the same name win', async () => {
      const attempts = Array.from({ length: 6 }, (_, i) => ({
        name: 'contested',
        trustDomain: `contested-${i}.example`,
        createdAt: clock.now().toISOString(),
      }));
      const results = await Promise.all(attempts.map((t) => store().create(t)));
      expect(results.filter((r) => r)).toHaveLength(1);
      const winner = attempts[results.indexOf(true)]!;
      expect(await store().get('contested')).toEqual(winner);
      for (const loser of attempts.filter((t) => t !== winner)) {
        expect(await store().getByTrustDomain(loser.trustDomain)).toBeUndefined();
      }
    });
  });

  describe('list', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlTenantStore(database().db);

    // Inserted out of order; names use digits and hyphens, which sort before letters bytewise.
    const names = ['zeta', 'a-1', 'alpha', 'b', 'a0', 'm-m', 'c9'];
    const sorted = [...names].sort();
    const records = new Map<string, TenantRecord>();

    beforeAll(async () => {
      for (const name of names) {
        clock.advance(1000);
        const record: TenantRecord = { name, trustDomain: `${name}.rampart.local`, createdAt: clock.now().toISOString() };
        records.set(name, record);
        expect(await store().create(record)).toBe(true);
      }
    });

    const expected = (from: number, to: number) => sorted.slice(from, to).map((n) => records.get(n));

    it('orders by name, bytewise', async () => {
      expect(sorted).toEqual(['a-1', 'a0', 'alpha', 'b', 'c9', 'm-m', 'zeta']);
      const page = await store().list(undefined, 100);
      expect(page.items).toEqual(expected(0, 7));
      expect(page.nextCursor).toBeUndefined();
    });

    it('pages with a cursor: 3 + 3 + 1, the last page has no cursor', async () => {
      const first = await store().list(undefined, 3);
      expect(first.items).toEqual(expected(0, 3));
      expect(first.nextCursor).toBe('alpha');

      const second = await store().list(first.nextCursor, 3);
      expect(second.items).toEqual(expected(3, 6));
      expect(second.nextCursor).toBe('m-m');

      const third = await store().list(second.nextCursor, 3);
      expect(third.items).toEqual(expected(6, 7));
      expect(third.nextCursor).toBeUndefined();
    });

    it('has no cursor when the last page is exactly full', async () => {
      const first = await store().list(undefined, 7);
      expect(first.items).toEqual(expected(0, 7));
      expect(first.nextCursor).toBeUndefined();

      const tail = await store().list('b', 3);
      expect(tail.items).toEqual(expected(4, 7));
      expect(tail.nextCursor).toBeUndefined();
    });

    it('treats the cursor as exclusive, also for a name that does not exist', async () => {
      expect((await store().list('a0', 2)).items).toEqual(expected(2, 4));
      // 'c' is not a tenant: the page starts at the first name after it.
      const page = await store().list('c', 2);
      expect(page.items).toEqual(expected(4, 6));
      expect(page.nextCursor).toBe('m-m');
      const past = await store().list('zeta', 5);
      expect(past.items).toEqual([]);
      expect(past.nextCursor).toBeUndefined();
    });

    it('visits every tenant exactly once, in order, for every page size', async () => {
      for (let limit = 1; limit <= 8; limit++) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store().list(cursor, limit);
          expect(page.items.length).toBeLessThanOrEqual(limit);
          seen.push(...page.items.map((t) => t.name));
          cursor = page.nextCursor;
          pages++;
          expect(pages).toBeLessThanOrEqual(names.length);
        } while (cursor !== undefined);
        expect(seen).toEqual(sorted);
        expect(pages).toBe(Math.ceil(names.length / limit));
      }
    });
  });
});
