import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { isRampartError } from '../../src/core/errors.js';
import { authenticateToken, createToken } from '../../src/identity/tokens.js';
import { type StoreDatabase, openDatabase } from '../../src/store/database.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { SqlTokenStore } from '../../src/store/token-store.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * `num_uses` (src/identity/tokens.ts, TokenStore.spendUse): every authenticated request spends
 * one use with a single conditional UPDATE, so concurrent requests on several replicas (here two
 * independent connections to one store) never spend more uses than the token has.
 */
describe.each(TEST_DATABASES)('use-limited tokens on $name', (target) => {
  const clock = new ManualClock(Date.parse('2026-03-01T00:00:00Z'));
  let replicas: [StoreDatabase, StoreDatabase];
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), `rampart-uses-${target.name}-`));
    const { url, drop } = await target.create();
    const a = await openDatabase({ databaseUrl: url, dataDir });
    const b = await openDatabase({ databaseUrl: url, dataDir });
    replicas = [a, b];
    cleanup = async () => {
      await a.close();
      await b.close();
      await drop();
      rmSync(dataDir, { recursive: true, force: true });
    };
    await new SqlTenantStore(a.db).create({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt: clock.now().toISOString() });
  });
  afterAll(async () => {
    await cleanup?.();
  });

  const storeOf = (i: number) => new SqlTokenStore(replicas[i % 2]!.db);

  async function limited(uses: number) {
    return createToken(storeOf(0), clock, { tenant: 'acme', policies: ['app'], displayName: 't', ttlMs: 3_600_000, createdBy: null, numUses: uses });
  }

  /** Authenticates `n` times at once, alternating replicas; the codes of the refusals. */
  async function race(token: string, n: number): Promise<{ ok: number[]; refused: string[] }> {
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => authenticateToken(storeOf(i), clock, token, '127.0.0.1')));
    const ok: number[] = [];
    const refused: string[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') ok.push(r.value.record.usesLeft!);
      else if (isRampartError(r.reason)) refused.push(r.reason.code);
      else throw r.reason;
    }
    return { ok, refused };
  }

  it('lets exactly num_uses of many concurrent requests through, then revokes the token', async () => {
    const { token, record } = await limited(3);
    expect(record).toMatchObject({ numUses: 3, usesLeft: 3 });
    const { ok, refused } = await race(token, 12);
    expect(ok.sort()).toEqual([0, 1, 2]);
    expect(refused).toHaveLength(9);
    for (const code of refused) expect(['auth.token_exhausted', 'auth.token_revoked']).toContain(code);
    const stored = await storeOf(1).get(record.accessor);
    expect(stored).toMatchObject({ usesLeft: 0, numUses: 3, revokedAt: clock.now().toISOString() });
  });

  it('refuses a replay after exhaustion with auth.token_exhausted', async () => {
    const { token } = await limited(1);
    await authenticateToken(storeOf(0), clock, token, '127.0.0.1');
    await expect(authenticateToken(storeOf(1), clock, token, '127.0.0.1')).rejects.toMatchObject({ code: 'auth.token_exhausted' });
    await expect(authenticateToken(storeOf(0), clock, token, '127.0.0.1')).rejects.toMatchObject({ code: 'auth.token_exhausted' });
  });

  it('never spends more uses than granted, for any limit and load (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 12 }), async (uses, requests) => {
        const { token } = await limited(uses);
        const { ok } = await race(token, requests);
        expect(ok).toHaveLength(Math.min(uses, requests));
        expect(new Set(ok).size).toBe(ok.length);
      }),
      { numRuns: 12 },
    );
  });

  it('leaves unlimited tokens alone and refuses a use-limited creator', async () => {
    const { token, record } = await createToken(storeOf(0), clock, { tenant: 'acme', policies: [], displayName: 'u', ttlMs: 3_600_000, createdBy: null });
    for (let i = 0; i < 3; i++) expect((await authenticateToken(storeOf(i), clock, token, '127.0.0.1')).record.usesLeft).toBeUndefined();
    expect(await storeOf(0).spendUse(record.accessor, clock.now().toISOString())).toBeUndefined();
    const creator = (await limited(5)).record;
    await expect(createToken(storeOf(0), clock, { tenant: 'acme', policies: [], displayName: 'c', ttlMs: 1000, createdBy: null, creator })).rejects.toMatchObject({ code: 'token.use_limited' });
    await expect(limited(-1)).rejects.toMatchObject({ code: 'token.uses_invalid' });
  });
});
