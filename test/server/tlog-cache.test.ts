import 'reflect-metadata';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/audit/merkle.js';
import { ServedTiles } from '../../src/audit/served-tiles.js';
import { TILE_WIDTH, TileHashes, decodeEntryBundle, encodeEntryBundle, encodeHashTile } from '../../src/audit/tiles.js';
import { storeTreeReader } from '../../src/audit/tree-reader.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The tile cache and validators of src/audit/served-tiles.ts behind src/server/routes/tlog.ts:
 * full tiles and bundles answer If-None-Match with 304, a cached tile is never served for a
 * partial request nor a partial one cached, a cached bundle is refused once retention pruned it,
 * and whatever the cache holds, a body equals what the store encodes (on SQLite and PostgreSQL).
 */

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe.each(TEST_DATABASES)('tlog tile cache ($name)', (database) => {
  let s: TestServer;
  let operator: Record<string, string>;

  const get = (path: string, headers: Record<string, string> = {}) => s.app.inject({ method: 'GET', url: `/v1/audit/tlog/${path}`, headers: { ...operator, ...headers } });

  /** Appends `payloads` and signs a checkpoint covering them (and every audited request so far). */
  async function append(payloads: readonly string[]): Promise<number> {
    await s.runtime.stores.audit.insert(payloads.map((payload) => ({ tenant: 'default', recordedAt: s.clock.now().toISOString(), payload })));
    await s.runtime.audit.flush();
    await s.runtime.audit.integrateAll();
    await s.runtime.checkpointer.checkpoint();
    return (await s.runtime.checkpoints.latest())!.size;
  }

  /** What the store holds for leaves [start, end), encoded by the reference encoder. */
  async function storedBundle(start: number, end: number): Promise<string> {
    const rows = await s.runtime.stores.audit.leafEntries(start, end);
    return hex(encodeEntryBundle(rows.map((r) => Buffer.from(r.payload, 'utf8'))));
  }

  beforeAll(async () => {
    s = await startTestServer({ database });
    operator = bearer(s.adminToken);
    // Lengths around the uint16 prefix's byte boundaries (a 256-byte entry's prefix holds a NUL)
    // and multi-byte UTF-8, so the store's encoding is checked byte for byte.
    const odd = [0, 1, 200, 245, 246, 247, 1000].map((n) => JSON.stringify({ pad: 'x'.repeat(n) })); // 10 + n bytes
    await append([...odd, JSON.stringify({ text: 'päck €uro 🧾' }), ...Array.from({ length: 292 }, (_, i) => JSON.stringify({ n: i }))]);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('encodes bundles in the store exactly as the reference encoder does, whatever the entry lengths', async () => {
    const bundle = await get('tile/entries/000');
    expect(bundle.statusCode).toBe(200);
    expect(hex(bundle.rawPayload)).toBe(await storedBundle(0, TILE_WIDTH));
    const lengths = decodeEntryBundle(new Uint8Array(bundle.rawPayload)).map((e) => e.length);
    expect(lengths).toEqual(expect.arrayContaining([255, 256, 257, 1010]));
    // Hash tiles equal the hashes the tree reader reads one by one.
    const reference = new TileHashes(storeTreeReader(s.runtime.stores.audit));
    expect(hex((await get('tile/0/000')).rawPayload)).toBe(hex(encodeHashTile(await reference.tile(0, 0, TILE_WIDTH))));
    expect(hex((await get('tile/1/000.p/1')).rawPayload)).toBe(hex(encodeHashTile(await reference.tile(1, 0, 1))));
  });

  it('answers If-None-Match with 304 for hash tiles and bundles, weak comparison as RFC 9110 says', async () => {
    for (const path of ['tile/0/000', 'tile/entries/000', 'tile/0/001.p/7', 'tile/entries/001.p/7']) {
      const first = await get(path);
      const etag = first.headers.etag as string;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
      for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
        const again = await get(path, { 'if-none-match': header });
        expect({ path, header, status: again.statusCode, body: again.rawPayload.length }).toEqual({ path, header, status: 304, body: 0 });
        expect(again.headers.etag).toBe(etag);
        expect(again.headers['cache-control']).toBe(first.headers['cache-control']);
      }
      expect((await get(path, { 'if-none-match': '"other"' })).statusCode).toBe(200);
    }
    // A conditional bundle request is still a request for tenant data: authenticated first.
    const anonymous = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/000', headers: { 'if-none-match': '*' } });
    expect(anonymous.statusCode).toBe(401);
  });

  it('serves a partial tile from the store after the full one was cached, and the full one once the partial fills', async () => {
    const size = (await s.runtime.checkpoints.latest())!.size;
    expect(size).toBeLessThan(2 * TILE_WIDTH);
    const width = size - TILE_WIDTH;
    const partialTile = await get(`tile/0/001.p/${width}`);
    const partialBundle = await get(`tile/entries/001.p/${width}`);
    expect(partialTile.headers['cache-control']).toBe('public, max-age=60');
    expect((await get('tile/0/001')).statusCode).toBe(404);

    const grown = await append(Array.from({ length: 2 * TILE_WIDTH - size }, (_, i) => JSON.stringify({ filler: i })));
    expect(grown).toBeGreaterThanOrEqual(2 * TILE_WIDTH);
    const fullTile = await get('tile/0/001');
    const fullBundle = await get('tile/entries/001');
    expect(fullTile.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(hex(fullBundle.rawPayload)).toBe(await storedBundle(TILE_WIDTH, 2 * TILE_WIDTH));
    const entries = decodeEntryBundle(new Uint8Array(fullBundle.rawPayload));
    expect(hex(fullTile.rawPayload)).toBe(entries.map((e) => hex(leafHash(e))).join(''));
    // The partial answers are unchanged prefixes of the full ones, still read from the store.
    expect(hex((await get(`tile/0/001.p/${width}`)).rawPayload)).toBe(hex(partialTile.rawPayload));
    expect(hex(fullTile.rawPayload).startsWith(hex(partialTile.rawPayload))).toBe(true);
    expect(hex((await get(`tile/entries/001.p/${width}`)).rawPayload)).toBe(hex(partialBundle.rawPayload));
    expect(hex(fullBundle.rawPayload).startsWith(hex(partialBundle.rawPayload))).toBe(true);
  });

  it('refuses a cached bundle once retention pruned an entry of it, and keeps serving its hash tile', async () => {
    const cached = await get('tile/entries/001');
    expect(cached.statusCode).toBe(200);
    // A client must not keep it either: it revalidates, and the revalidation below answers 410.
    expect(cached.headers['cache-control']).toBe('private, no-cache');
    const tile = await get('tile/0/001');
    // What the pruner writes (src/store/prune-store.ts), done directly: the clock need not move.
    await s.runtime.database.db.updateTable('audit_events').set({ payload: '', pruned_at: s.clock.now().toISOString() }).where('leaf_index', '=', TILE_WIDTH + 5).execute();
    for (const headers of [{}, { 'if-none-match': cached.headers.etag as string }] as Record<string, string>[]) {
      const gone = await get('tile/entries/001', headers);
      expect(gone.statusCode).toBe(410);
      expect(gone.json()).toMatchObject({ code: 'audit.entry_pruned' });
    }
    const still = await get('tile/0/001');
    expect(still.statusCode).toBe(200);
    expect(hex(still.rawPayload)).toBe(hex(tile.rawPayload));
  });

  it('keeps each cache within its byte budget, and any request sequence serves what the store holds', async () => {
    const store = s.runtime.stores.audit;
    const size = (await s.runtime.checkpoints.latest())!.size;
    const reference = new TileHashes(storeTreeReader(store));
    // Two full hash tiles and one full bundle at most: every run evicts.
    const tiles = new ServedTiles(store, { hashTileCacheBytes: 2 * 8192, bundleCacheBytes: 200_000 });
    const request = fc.record({ bundle: fc.boolean(), index: fc.integer({ min: 0, max: Math.floor(size / TILE_WIDTH) - 1 }), width: fc.integer({ min: 1, max: TILE_WIDTH }) });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 12 }), async (requests) => {
        for (const { bundle, index, width } of requests) {
          const start = index * TILE_WIDTH;
          if (bundle) {
            // Leaf 256 + 5 was pruned (the test above): a bundle holding it is refused, cached or not.
            if (index === 1 && width > 5) {
              await expect(tiles.entryBundle(index, width)).rejects.toMatchObject({ code: 'audit.entry_pruned' });
              continue;
            }
            expect(hex((await tiles.entryBundle(index, width)).body)).toBe(await storedBundle(start, start + width));
          } else {
            expect(hex((await tiles.hashTile(0, index, width)).body)).toBe(hex(encodeHashTile(await reference.tile(0, index, width))));
          }
          expect(tiles.cachedBytes.hashTiles).toBeLessThanOrEqual(2 * 8192);
          expect(tiles.cachedBytes.bundles).toBeLessThanOrEqual(200_000);
        }
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});
