import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/audit/checkpoint.js';
import { type Hash, verifyInclusion } from '../../src/audit/merkle.js';
import { type NoteVerifier, parseVerifierKey } from '../../src/audit/note.js';
import { decodeHashTile } from '../../src/audit/tiles.js';
import { storeLogSource, tlogSource, verifyLog } from '../../src/audit/verify.js';
import { buildApp } from '../../src/server/app.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Retention through the HTTP surface: what readers of events, tiles and proofs see once payloads
 * were pruned, and the legal hold route (operator only, audited). ManualClock; nothing sleeps.
 */

const HOUR = 3_600_000;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const b64 = (s: string): Hash => new Uint8Array(Buffer.from(s, 'base64'));

describe.each(TEST_DATABASES)('audit retention over HTTP ($name)', (database) => {
  let s: TestServer;
  let operator: Record<string, string>;
  let verifier: NoteVerifier;
  let acme: Record<string, string>;

  /** Like the CLI's fetcher: throws on anything but 200, with the status on the error. */
  const fetchTlog = async (path: string, app = s.app): Promise<Uint8Array> => {
    const res = await app.inject({ method: 'GET', url: `/v1/audit/tlog/${path}`, headers: operator });
    if (res.statusCode !== 200) throw Object.assign(new Error(`${path}: ${res.statusCode} ${res.body}`), { status: res.statusCode });
    return new Uint8Array(res.rawPayload);
  };

  async function checkpointNow(): Promise<number> {
    await s.runtime.audit.flush();
    await s.runtime.audit.integrateAll();
    await s.runtime.checkpointer.checkpoint();
    return (await s.runtime.checkpoints.latest())!.size;
  }

  const prune = () => s.runtime.auditPruner!.prune();
  const prunedCount = async () =>
    (await s.runtime.stores.audit.leafEntries(0, 1_000_000)).filter((e) => e.prunedAt !== null).length;

  beforeAll(async () => {
    s = await startTestServer({ database, auditRetention: '24h' });
    operator = bearer(s.adminToken);
    verifier = parseVerifierKey(s.runtime.checkpointer.verifierKey);
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: operator, payload: { name: 'acme' } });
    const minted = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { ...operator, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } });
    acme = bearer((minted.json() as { token: string }).token);
    // 300 events (a full level-0 tile and more), all recorded now.
    await s.runtime.stores.audit.insert(
      Array.from({ length: 300 }, (_, i) => ({ tenant: 'default', recordedAt: s.clock.now().toISOString(), payload: JSON.stringify({ n: i, action: 'test:event' }) })),
    );
    await checkpointNow();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('is configured from audit_retention, and prunes nothing younger than it', async () => {
    expect(s.runtime.config.auditRetentionMs).toBe(24 * HOUR);
    expect(await prune()).toEqual({ pruned: 0, stopped: 'done' });
  });

  it('allows only the operator tenant to read or change the legal hold', async () => {
    for (const headers of [acme, { ...acme, 'x-rampart-tenant': 'default' }]) {
      for (const req of [
        { method: 'GET' as const, url: '/v1/audit/legal-hold', headers },
        { method: 'POST' as const, url: '/v1/audit/legal-hold', headers, payload: { enabled: false, reason: 'x' } },
      ]) {
        const res = await s.app.inject(req);
        expect(res.statusCode).toBe(403);
        expect(res.json().code).toBe('authz.denied');
      }
    }
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/legal-hold' })).statusCode).toBe(401);
    const bad = await s.app.inject({ method: 'POST', url: '/v1/audit/legal-hold', headers: operator, payload: { enabled: true } });
    expect(bad.statusCode).toBe(400);
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/legal-hold', headers: operator })).json()).toEqual({ enabled: false, reason: '', since: null });
  });

  it('stops pruning while a legal hold is on, audits placing and releasing it, and resumes after release', async () => {
    const placedAt = s.clock.now().toISOString();
    const hold = await s.app.inject({ method: 'POST', url: '/v1/audit/legal-hold', headers: operator, payload: { enabled: true, reason: 'case 2026-114' } });
    expect(hold.statusCode).toBe(200);
    expect(hold.json()).toEqual({ enabled: true, reason: 'case 2026-114', since: placedAt });
    expect((await s.app.inject({ method: 'GET', url: '/v1/audit/legal-hold', headers: operator })).json()).toEqual({ enabled: true, reason: 'case 2026-114', since: placedAt });

    s.clock.advance(48 * HOUR);
    await checkpointNow();
    expect(await prune()).toEqual({ pruned: 0, stopped: 'held' });
    expect(await prunedCount()).toBe(0);

    const release = await s.app.inject({ method: 'POST', url: '/v1/audit/legal-hold', headers: operator, payload: { enabled: false, reason: 'case closed' } });
    expect(release.json()).toEqual({ enabled: false, reason: 'case closed', since: null });
    await s.runtime.audit.flush();
    // Read the audit trail of the hold before pruning takes it (it is two days old by now).
    const events = (await s.runtime.stores.audit.listEvents('default', 0, 10_000)).items.map(
      (e) => JSON.parse(e.payload) as { action: string; outcome: string; details: unknown },
    );
    const holds = events.filter((e) => e.action === 'audit:legal-hold');
    expect(holds.filter((e) => e.outcome === 'success' && e.details !== null && e.details !== undefined).map((e) => e.details)).toEqual([
      { enabled: true, reason: 'case 2026-114', since: placedAt },
      { enabled: false, reason: 'case closed', since: null },
    ]);
    expect(holds.filter((e) => e.outcome === 'denied').length).toBeGreaterThanOrEqual(2);

    await checkpointNow();
    const run = await prune();
    expect(run.stopped).toBe('done');
    expect(run.pruned).toBeGreaterThanOrEqual(300);
  });

  it('lists a pruned event as {leaf_index, event: null, pruned: true}', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/v1/audit/events?limit=500', headers: operator });
    expect(res.statusCode).toBe(200);
    const items = (res.json() as { items: { leaf_index: number | null; event: unknown; pruned?: boolean }[] }).items;
    const pruned = items.filter((i) => i.pruned === true);
    expect(pruned.length).toBeGreaterThanOrEqual(300);
    for (const i of pruned) expect(i).toEqual({ leaf_index: expect.any(Number), event: null, pruned: true });
    // Unpruned events keep their shape (no `pruned` key).
    const intact = items.filter((i) => i.pruned === undefined);
    expect(intact.length).toBeGreaterThan(0);
    expect(intact.every((i) => i.event !== null && !('pruned' in i))).toBe(true);
  });

  it('answers 410 audit.entry_pruned for an entry bundle with pruned entries, but still serves its hash tile', async () => {
    const bundle = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/entries/000', headers: operator });
    expect(bundle.statusCode).toBe(410);
    expect(bundle.json().code).toBe('audit.entry_pruned');
    const tile = await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/tile/0/000', headers: operator });
    expect(tile.statusCode).toBe(200);
    expect(decodeHashTile(new Uint8Array(tile.rawPayload))).toHaveLength(256);
  });

  it('keeps inclusion proofs of pruned leaves verifiable', async () => {
    const cp = openCheckpoint((await s.app.inject({ method: 'GET', url: '/v1/audit/tlog/checkpoint' })).body, verifier);
    for (const index of [0, 5, 255, 299]) {
      const res = await s.app.inject({ method: 'GET', url: `/v1/audit/proof/inclusion?index=${index}`, headers: operator });
      expect(res.statusCode).toBe(200);
      const body = res.json() as { size: number; leaf_hash: string; proof: string[] };
      const [stored] = await s.runtime.stores.audit.leafEntries(index, index + 1);
      expect(stored!.prunedAt).not.toBeNull();
      expect(Buffer.from(body.leaf_hash, 'base64').toString('hex')).toBe(stored!.leafHash);
      verifyInclusion(index, cp.size, b64(body.leaf_hash), body.proof.map(b64), cp.rootHash);
    }
  });

  it('verifies online, falling back to hash tiles for pruned bundles, and offline', async () => {
    await checkpointNow();
    const online = await verifyLog(tlogSource(fetchTlog), { verifier });
    expect(online.problems).toEqual([]);
    expect(online.ok).toBe(true);
    expect(online.entriesPruned).toBeGreaterThanOrEqual(300);
    expect(online.entriesChecked).toBe(online.latest!.size);
    const offline = await verifyLog(storeLogSource(s.runtime.stores.audit, s.runtime.checkpoints), { verifier });
    expect(offline.problems).toEqual([]);
    expect(offline.entriesPruned).toBe(await prunedCount());
  });

  it('online verification still fails when a pruned leaf hash was replaced in the store', async () => {
    const [row] = await s.runtime.stores.audit.leafEntries(3, 4);
    const db = s.runtime.database.db;
    await db.updateTable('audit_events').set({ leaf_hash: 'ab'.repeat(32) }).where('leaf_index', '=', 3).execute();
    // s.app cached that hash tile when it served it; a restarted server (cold tile cache,
    // src/audit/served-tiles.ts) serves the store as it is now.
    const restarted = await buildApp(s.runtime);
    try {
      const r = await verifyLog(tlogSource((path) => fetchTlog(path, restarted)), { verifier });
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => p.kind)).toContain('root_mismatch');
    } finally {
      await restarted.close();
      await db.updateTable('audit_events').set({ leaf_hash: row!.leafHash }).where('leaf_index', '=', 3).execute();
    }
  });
});
