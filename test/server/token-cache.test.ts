import 'reflect-metadata';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenRecord } from '../../src/identity/store.js';
import { TOKEN_CACHE_TTL_MS, TokenCache } from '../../src/server/token-cache.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The authentication token cache (src/server/token-cache.ts) must never let a revocation be
 * outlived: at once in this process, within TOKEN_CACHE_TTL_MS across replicas.
 */

function record(accessor: string, change: Partial<TokenRecord> = {}): TokenRecord {
  return {
    accessor,
    tenant: 'default',
    secretHash: 'ab'.repeat(32),
    policies: ['reader'],
    displayName: '',
    createdBy: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    expiresAt: null,
    revokedAt: null,
    ...change,
  };
}

/** A token store port whose rows the test changes behind the cache's back, as another replica would. */
function fakeStore() {
  const rows = new Map<string, TokenRecord>();
  let reads = 0;
  let gate: Promise<void> | undefined;
  return {
    rows,
    reads: () => reads,
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
    async get(accessor: string) {
      reads++;
      const row = rows.get(accessor);
      if (gate) await gate;
      return row;
    },
  };
}

describe('TokenCache', () => {
  it('answers from memory within the TTL and reads the store again after it (another replica revoked the token)', async () => {
    const store = fakeStore();
    let now = 0;
    const cache = new TokenCache(store, () => now);
    store.rows.set('a', record('a'));
    expect((await cache.get('a'))?.revokedAt).toBeNull();
    store.rows.set('a', record('a', { revokedAt: '2026-01-01T00:00:01.000Z' }));
    now = TOKEN_CACHE_TTL_MS - 1;
    expect((await cache.get('a'))?.revokedAt).toBeNull();
    expect(store.reads()).toBe(1);
    now = TOKEN_CACHE_TTL_MS;
    expect((await cache.get('a'))?.revokedAt).toBe('2026-01-01T00:00:01.000Z');
    expect(store.reads()).toBe(2);
  });

  it('sees a change at once after invalidate() (this process committed a change)', async () => {
    const store = fakeStore();
    const cache = new TokenCache(store, () => 0);
    store.rows.set('a', record('a'));
    await cache.get('a');
    store.rows.set('a', record('a', { revokedAt: '2026-01-01T00:00:01.000Z' }));
    cache.invalidate();
    expect((await cache.get('a'))?.revokedAt).toBe('2026-01-01T00:00:01.000Z');
  });

  it('does not keep a row read before an invalidation that happened while the read was in flight', async () => {
    const store = fakeStore();
    const cache = new TokenCache(store, () => 0);
    store.rows.set('a', record('a'));
    const release = store.hold();
    const inFlight = cache.get('a');
    // The revocation commits and invalidates while the read above still holds the old row.
    store.rows.set('a', record('a', { revokedAt: '2026-01-01T00:00:01.000Z' }));
    cache.invalidate();
    release();
    expect((await inFlight)?.revokedAt).toBeNull();
    expect((await cache.get('a'))?.revokedAt).toBe('2026-01-01T00:00:01.000Z');
  });

  it('never keeps revoked, use-limited or unknown tokens', async () => {
    const store = fakeStore();
    const cache = new TokenCache(store, () => 0);
    store.rows.set('revoked', record('revoked', { revokedAt: '2026-01-01T00:00:01.000Z' }));
    store.rows.set('limited', record('limited', { numUses: 3, usesLeft: 3 }));
    for (const accessor of ['revoked', 'limited', 'unknown']) {
      await cache.get(accessor);
      await cache.get(accessor);
    }
    expect(store.reads()).toBe(6);
  });

  it('never answers a row older than the TTL, whatever the sequence of reads, clock steps and invalidations', async () => {
    type Step = { kind: 'read' } | { kind: 'advance'; ms: number } | { kind: 'revoke' } | { kind: 'revoke-here' };
    const step = fc.oneof(
      fc.constant<Step>({ kind: 'read' }),
      fc.integer({ min: 0, max: 2 * TOKEN_CACHE_TTL_MS }).map<Step>((ms) => ({ kind: 'advance', ms })),
      fc.constant<Step>({ kind: 'revoke' }),
      fc.constant<Step>({ kind: 'revoke-here' }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const store = fakeStore();
        let now = 0;
        const cache = new TokenCache(store, () => now);
        store.rows.set('a', record('a'));
        /** When the store's row was revoked, and whether this process was told (invalidate). */
        let revokedAt: number | undefined;
        let revokedHere = false;
        for (const s of steps) {
          if (s.kind === 'advance') now += s.ms;
          else if (s.kind === 'revoke' || s.kind === 'revoke-here') {
            if (revokedAt !== undefined) continue;
            store.rows.set('a', record('a', { revokedAt: 'x' }));
            revokedAt = now;
            revokedHere = s.kind === 'revoke-here';
            if (revokedHere) cache.invalidate();
          } else {
            const seen = await cache.get('a');
            if (revokedAt !== undefined && (revokedHere || now - revokedAt >= TOKEN_CACHE_TTL_MS)) expect(seen?.revokedAt).toBe('x');
          }
        }
      }),
    );
  });
});

describe('authentication through the token cache', () => {
  let server: TestServer;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  async function createToken(): Promise<{ token: string; accessor: string }> {
    const res = await server.app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(server.adminToken), payload: { ttl: '1h', policies: [] } });
    expect(res.statusCode).toBe(201);
    return res.json<{ token: string; accessor: string }>();
  }

  it('refuses a token on the very next request after it was revoked through the API, although it was just used', async () => {
    const { token, accessor } = await createToken();
    for (let i = 0; i < 3; i++) expect((await server.app.inject({ method: 'GET', url: '/v1/auth/token/lookup-self', headers: bearer(token) })).statusCode).toBe(200);
    const revoke = await server.app.inject({ method: 'DELETE', url: `/v1/tokens/${accessor}`, headers: bearer(server.adminToken) });
    expect(revoke.statusCode).toBe(204);
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(token) });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'auth.token_revoked' });
  });

  it('refuses a Vault token on the very next request after auth/token/revoke-self, although it was just used', async () => {
    const { token } = await createToken();
    const vault = { 'x-vault-token': token };
    expect((await server.app.inject({ method: 'GET', url: '/v1/auth/token/lookup-self', headers: vault })).statusCode).toBe(200);
    expect((await server.app.inject({ method: 'POST', url: '/v1/auth/token/revoke-self', headers: vault })).statusCode).toBe(204);
    const res = await server.app.inject({ method: 'GET', url: '/v1/auth/token/lookup-self', headers: vault });
    expect(res.statusCode).toBe(403);
  });

  it('still checks the presented secret on every request: a cached accessor with a wrong secret is refused', async () => {
    const { token } = await createToken();
    expect((await server.app.inject({ method: 'GET', url: '/v1/auth/token/lookup-self', headers: bearer(token) })).statusCode).toBe(200);
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const forged = `${token.slice(0, -1)}${last}`;
    const res = await server.app.inject({ method: 'GET', url: '/v1/tokens/self', headers: bearer(forged) });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'auth.token_invalid' });
  });
});
