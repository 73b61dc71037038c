import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/audit/checkpoint.js';
import { type Hash, leafHash, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { type NoteVerifier, parseVerifierKey } from '../../src/audit/note.js';
import { decodeEntryBundle, decodeHashTile } from '../../src/audit/tiles.js';
import { storeLogSource, tlogSource, verifyLog } from '../../src/audit/verify.js';
import { runWitness } from '../../src/audit/witness.js';
import { buildApp } from '../../src/server/app.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The tlog surface over HTTP (app.inject): a client that knows only the verifier key checks
 * everything from the tiles; access follows src/server/routes/tlog.ts.
 */

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const b64 = (s: string): Hash => new Uint8Array(Buffer.from(s, 'base64'));

describe.each(TEST_DATABASES)('tlog routes ($name)', (database) => {
  let s: TestServer;
  let operator: Record<string, string>;
  let verifier: NoteVerifier;

  /** GETs a tlog path as the operator; throws on anything but 200 (as the CLI's fetcher does). */
  const fetchTlog = async (path: string): Promise<Uint8Array> => {
    const res = await s.app.inject({ method: 'GET', url: `/v1/audit/tlog/${path}`, headers: operator });
    if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${res.body}`);
    return new Uint8Array(res.rawPayload);
  };

  async function checkpointNow(): Promise<void> {
    await s.runtime.audit.flush();
    await s.runtime.audit.integrateAll();
    await s.runtime.checkpointer.checkpoint();
  }

  beforeAll(async () => {
    s = await startTestServer({ database });
    operator = bearer(s.adminToken);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('serves the verifier key publicly, in note verifier-key format', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/v1/audit/key' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.body).toMatch(/^rampart\.local\/audit\/[0-9a-f]{16}\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n$/);
    verifier = parseVerifierKey(res.body);
    expect(verifier.verifierKey).toBe(s.runtime.checkpointer.verifierKey);
  });

  it('answers 404 for the checkpoint before the first one is signed', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/checkpoint' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('request.not_found');
  });

  it('serves a public signed checkpoint that verifies with the key alone', async () => {
    // 300 entries: one full level-0 tile and a partial one.
    const rows = Array.from({ length: 299 }, (_, i) => ({ tenant: i % 2 ? 'default' : 'acme', recordedAt: s.clock.now().toISOString(), payload: JSON.stringify({ n: i }) }));
    await s.runtime.stores.audit.insert(rows);
    await checkpointNow();
    const res = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/checkpoint' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=1');
    const cp = openCheckpoint(res.body, verifier);
    expect(cp.size).toBe(300);
    expect(cp.origin).toBe(verifier.name);
  });

  it('serves tiles and entry bundles that match each other, with cache headers', async () => {
    const full = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/0/000', headers: operator });
    expect(full.statusCode).toBe(200);
    expect(full.headers['content-type']).toBe('application/octet-stream');
    expect(full.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(full.headers.etag).toBe(`"${createHash('sha256').update(full.rawPayload).digest('base64url')}"`);
    expect(full.rawPayload.length).toBe(8192);
    const partial = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/0/001.p/44', headers: operator });
    expect(partial.statusCode).toBe(200);
    expect(partial.headers['cache-control']).toBe('public, max-age=60');
    const bundle = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/000', headers: operator });
    expect(bundle.headers['cache-control']).toBe('private, no-cache');
    expect(bundle.headers.etag).toBe(`"${createHash('sha256').update(bundle.rawPayload).digest('base64url')}"`);
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/001.p/44', headers: operator })).headers['cache-control']).toBe('private, no-cache');
    const entries = decodeEntryBundle(await fetchTlog('tile/entries/001.p/44'));
    expect(entries).toHaveLength(44);
    const hashes = decodeHashTile(new Uint8Array(partial.rawPayload));
    entries.forEach((e, i) => expect(Buffer.from(leafHash(e)).equals(Buffer.from(hashes[i] as Hash))).toBe(true));
    expect(decodeHashTile(await fetchTlog('tile/1/000.p/1'))).toHaveLength(1);
  });

  it('answers 404 for tiles beyond the latest checkpoint and for malformed paths', async () => {
    for (const path of ['tile/0/001', 'tile/0/001.p/45', 'tile/entries/002.p/1', 'tile/1/000', 'tile/0/1', 'tile/0/000.p/256', 'tile/x']) {
      const res = await s.app.inject({ method: 'GET', url: `/v1/audit/tlog/${path}`, headers: operator });
      expect({ path, status: res.statusCode }).toEqual({ path, status: 404 });
    }
  });

  it('serves hash tiles to anyone, unaudited, and entry bundles only to the operator tenant', async () => {
    await s.runtime.audit.flush();
    const before = await s.runtime.stores.audit.count();
    for (const path of ['tile/0/000', 'tile/0/001.p/44', 'tile/1/000.p/1', 'checkpoint']) {
      expect({ path, status: (await s.app.inject({ method: 'GET', url: `/v1/audit/tlog/${path}` })).statusCode }).toEqual({ path, status: 200 });
    }
    // A malformed public request is answered without authentication, and not audited either.
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/0/1' })).statusCode).toBe(404);
    await s.runtime.audit.flush();
    expect(await s.runtime.stores.audit.count()).toBe(before);
    const metrics = (await s.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/rampart_http_requests_total\{[^}]*route="\/v1\/audit\/tlog\/tile\/\*"[^}]*status="200"[^}]*\} [1-9]/);

    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/000' })).statusCode).toBe(401);
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/000', headers: operator })).statusCode).toBe(200);
    await s.runtime.audit.flush();
    // The 401 and the 200 above: every bundle request is audited.
    expect(await s.runtime.stores.audit.count()).toBe(before + 2);
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: operator, payload: { name: 'acme' } });
    const minted = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { ...operator, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } });
    const acme = bearer((minted.json() as { token: string }).token);
    for (const headers of [acme, { ...acme, 'x-rampart-tenant': 'default' }]) {
      const res = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/000', headers });
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('authz.denied');
    }
    // Proofs reveal only hashes: a tenant admin may have them.
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/proof/inclusion?index=1', headers: acme })).statusCode).toBe(200);
  });

  it('serves inclusion and consistency proofs that verify against signed checkpoints', async () => {
    const old = openCheckpoint((await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/checkpoint' })).body, verifier);
    await checkpointNow(); // the requests above were audited: a bigger tree
    const now = openCheckpoint((await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/checkpoint' })).body, verifier);
    expect(now.size).toBeGreaterThan(old.size);

    const inc = await s.app.inject({ method: 'GET', url: `/v1/audit/proof/inclusion?index=257&size=${now.size}`, headers: operator });
    expect(inc.statusCode).toBe(200);
    const ib = inc.json() as { index: number; size: number; leaf_hash: string; proof: string[]; checkpoint: string | null };
    expect(openCheckpoint(ib.checkpoint!, verifier).size).toBe(now.size);
    const [entry] = decodeEntryBundle(await fetchTlog('tile/entries/001.p/2')).slice(1);
    expect(Buffer.from(leafHash(entry!)).toString('base64')).toBe(ib.leaf_hash);
    verifyInclusion(257, now.size, b64(ib.leaf_hash), ib.proof.map(b64), now.rootHash);

    const con = await s.app.inject({ method: 'GET', url: `/v1/audit/proof/consistency?from=${old.size}`, headers: operator });
    expect(con.statusCode).toBe(200);
    const cb = con.json() as { from: number; size: number; proof: string[] };
    expect(cb.size).toBe(now.size);
    verifyConsistency(old.size, now.size, cb.proof.map(b64), old.rootHash, now.rootHash);

    for (const url of [`/v1/audit/proof/inclusion?index=${now.size}`, `/v1/audit/proof/consistency?from=2&to=${now.size + 1}`, '/v1/audit/proof/consistency?from=5&to=4']) {
      const res = await s.app.inject({ method: 'GET', url, headers: operator });
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({ url, status: 400, code: 'audit.range_invalid' });
    }
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/proof/inclusion?index=-1', headers: operator })).json().code).toBe('request.invalid');
  });

  it('lets a client holding only the key verify everything from the tiles, and detect tampering', async () => {
    await checkpointNow();
    const clean = await verifyLog(tlogSource(fetchTlog), { verifier });
    expect(clean.problems).toEqual([]);
    expect(clean.ok).toBe(true);
    expect(clean.tilesChecked).toBeGreaterThanOrEqual(3);
    const witnessed = await runWitness(tlogSource(fetchTlog), { verifier, state: undefined, clock: s.clock });
    expect(witnessed.advanced).toBe(true);

    const servedBundle = await fetchTlog('tile/entries/000');
    await s.runtime.database.db.updateTable('audit_events').set({ payload: '{"n":"forged"}' }).where('leaf_index', '=', 42).execute();

    // This process cached the full bundle when it first served it, and keeps serving those bytes:
    // online verification checks the log as served (src/audit/served-tiles.ts).
    expect(Buffer.from(await fetchTlog('tile/entries/000')).equals(Buffer.from(servedBundle))).toBe(true);
    // The store itself is checked offline: the altered row is found.
    const offline = await verifyLog(storeLogSource(s.runtime.stores.audit, s.runtime.checkpoints), { verifier });
    expect(offline.problems).toContainEqual(expect.objectContaining({ kind: 'leaf_hash_mismatch', index: 42 }));
    // A server with a cold cache (a restart) serves the store as it is now: online finds it too.
    const restarted = await buildApp(s.runtime);
    try {
      const fetchCold = async (path: string): Promise<Uint8Array> => {
        const res = await restarted.inject({ method: 'GET', url: `/v1/audit/tlog/${path}`, headers: operator });
        if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${res.body}`);
        return new Uint8Array(res.rawPayload);
      };
      const tampered = await verifyLog(tlogSource(fetchCold), { verifier });
      expect(tampered.ok).toBe(false);
      expect(tampered.firstBadIndex).toBe(42);
      expect((await runWitness(tlogSource(fetchCold), { verifier, state: witnessed.state, clock: s.clock })).report.ok).toBe(false);
    } finally {
      await restarted.close();
    }
  });
});
