import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AuditEvent, serializeEvent } from '../../src/audit/event.js';
import { integratePendingIn, integrationOf } from '../../src/audit/integration.js';
import { AuditLog } from '../../src/audit/log.js';
import { leafHash, rootFromLeafHashes } from '../../src/audit/merkle.js';
import type { StoredAuditEvent } from '../../src/audit/store.js';
import { ManualClock } from '../../src/core/clock.js';
import { AuditError } from '../../src/core/errors.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { TEST_DATABASES, type TestDatabase } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';
import { testEvent } from '../support/audit-event.js';

/**
 * Contract suite for the AuditStore port (src/audit/store.ts), driven through the real AuditLog,
 * against every store in TEST_DATABASES; each describe block has its own fresh database.
 *
 * Leaf hashes and roots are recomputed here from the stored payloads, both with the module's
 * `leafHash`/`rootFromLeafHashes` and with a from-the-RFC reference (RFC 6962 §2.1), so a store
 * that mixes up rows, order or bytes cannot agree with either.
 */

async function openFresh(target: TestDatabase): Promise<{ database: StoreDatabase; cleanup(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-audit-store-'));
  const { url, drop } = await target.create();
  let database: StoreDatabase | undefined;
  const cleanup = async () => {
    await database?.close();
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    database = await openDatabase({ databaseUrl: url, dataDir });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { database, cleanup };
}


// ---------------------------------------------------------------------------------------------
// Reference hashing, written from RFC 6962 §2.1 independently of src/audit/merkle.ts.

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** SHA-256(0x00 ‖ payload bytes). */
function referenceLeafHash(payload: string): string {
  return sha256(Uint8Array.of(0), Buffer.from(payload, 'utf8')).toString('hex');
}

/** MTH(D[n]) by the recursive definition, over hex leaf hashes. */
function referenceRoot(leaves: readonly string[]): string {
  const rec = (l: readonly Buffer[]): Buffer => {
    if (l.length === 0) return sha256();
    if (l.length === 1) return l[0]!;
    let k = 1;
    while (k * 2 < l.length) k *= 2;
    return sha256(Uint8Array.of(1), rec(l.slice(0, k)), rec(l.slice(k)));
  };
  return rec(leaves.map((h) => Buffer.from(h, 'hex'))).toString('hex');
}

// ---------------------------------------------------------------------------------------------

function auditEvent(clock: ManualClock, tenant: string, seq: number, note = ''): AuditEvent {
  return testEvent(seq, {
    time: clock.now().toISOString(),
    tenant,
    request_id: `req-${tenant}-${seq}`,
    principal: { type: 'User', id: 'alice', tenant, auth_method: 'token' },
    resource: { type: 'Tenant', id: tenant },
    authorization: { decision: 'allow', policies: ['tenant-admin'], policy_version: 1 },
    http: { method: 'GET', route: '/v1/tenants/:name', status: 200 },
    details: { seq, note },
  });
}

const requestIdOf = (payload: string): string => (JSON.parse(payload) as AuditEvent).request_id;

interface Row {
  readonly id: number;
  readonly tenant: string;
  readonly payload: string;
  readonly leaf_index: number | null;
  readonly leaf_hash: string | null;
}

async function allRows(database: StoreDatabase): Promise<Row[]> {
  const rows = await database.db.selectFrom('audit_events').select(['id', 'tenant', 'payload', 'leaf_index', 'leaf_hash']).orderBy('id').execute();
  return rows.map((r) => ({ ...r, id: Number(r.id), leaf_index: r.leaf_index === null ? null : Number(r.leaf_index) }));
}

async function heads(database: StoreDatabase): Promise<Array<{ size: number; root: string }>> {
  const rows = await database.db.selectFrom('audit_tree_heads').select(['size', 'root_hash']).orderBy('size').execute();
  return rows.map((r) => ({ size: Number(r.size), root: r.root_hash }));
}

/** Every event of one tenant, following the cursor; checks the page shape on the way. */
async function listAll(store: SqlAuditStore, tenant: string, limit: number): Promise<{ items: StoredAuditEvent[]; pages: number }> {
  const items: StoredAuditEvent[] = [];
  let after = 0;
  let pages = 0;
  for (;;) {
    const page = await store.listEvents(tenant, after, limit);
    pages++;
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    if (page.nextCursor === undefined) break;
    expect(page.items).toHaveLength(limit);
    expect(page.nextCursor).toBe(page.items.at(-1)?.id);
    after = page.nextCursor;
    expect(pages).toBeLessThan(10_000);
  }
  return { items, pages };
}

describe.each(TEST_DATABASES)('integration computed outside the transaction on $name', (target) => {
  const database = freshDatabase(target);

  it('stores a batch hashed from the current tree, and nothing once another integrator moved the tree', async () => {
    const store = new SqlAuditStore(database().db, database().dialect);
    const clock = new ManualClock();
    const log = new AuditLog({ store, clock });
    await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(testEvent(i))));
    const at = clock.now().toISOString();

    const basis = await store.treeState();
    const pending = await store.pendingEntries(10);
    expect(pending).toHaveLength(10);
    const stale = integrationOf(basis, pending, at);
    // Another integrator takes the first 5 rows meanwhile.
    await integratePendingIn(store, 5, at);
    const moved = await store.treeState();
    expect(await store.applyIntegration(basis, stale)).toBe(false);
    expect(await store.treeState()).toEqual(moved);
    expect((await allRows(database())).filter((r) => r.leaf_index !== null)).toHaveLength(5);

    const fresh = integrationOf(moved, await store.pendingEntries(25), at);
    expect(await store.applyIntegration(moved, fresh)).toBe(true);
    const rows = await allRows(database());
    expect(rows.map((r) => r.leaf_index)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect((await store.treeState())?.rootHash).toBe(referenceRoot(rows.map((r) => referenceLeafHash(r.payload))));
  });
});

describe.each(TEST_DATABASES)('AuditStore with AuditLog on $name', (target) => {
  describe('append and integrate', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlAuditStore(database().db, database().dialect);
    const tenants = ['acme', 'globex', 'initech'];
    const N = 50;
    const first = Array.from({ length: N }, (_, i) => auditEvent(clock, tenants[i % 3]!, i, i % 5 === 0 ? 'ünï€😀' : ''));
    const appended: boolean[] = [];
    let log: AuditLog;

    beforeAll(() => {
      log = new AuditLog({
        store: store(),
        clock,
        maxBatch: 16,
        onAppend: (count, ok) => {
          for (let i = 0; i < count; i++) appended.push(ok);
        },
      });
    });

    it('makes every concurrently appended event durable, in append order', async () => {
      expect(await store().treeState()).toBeUndefined();
      const results = await Promise.all(first.map((e) => log.append(e)));
      expect(results).toHaveLength(N);
      expect(appended).toEqual(Array(N).fill(true));
      expect(await store().count()).toBe(N);

      const rows = await allRows(database());
      expect(rows).toHaveLength(N);
      expect(rows.map((r) => r.payload)).toEqual(first.map(serializeEvent));
      expect(rows.map((r) => r.tenant)).toEqual(first.map((e) => e.tenant));
      expect(rows.every((r) => r.leaf_index === null && r.leaf_hash === null)).toBe(true);
      expect(await store().treeState()).toBeUndefined();
    });

    it('integrateAll assigns leaf indexes 0..N-1 exactly once, in insertion order', async () => {
      await log.integrateAll();
      const rows = await allRows(database());
      expect(rows.map((r) => r.leaf_index)).toEqual(Array.from({ length: N }, (_, i) => i));
      expect((await store().treeState())?.size).toBe(N);

      // Nothing is pending any more: integrating again changes nothing.
      const before = await heads(database());
      expect(await log.integrate()).toBe(0);
      await log.integrateAll();
      expect(await allRows(database())).toEqual(rows);
      expect(await heads(database())).toEqual(before);
      expect((await store().treeState())?.size).toBe(N);
    });

    it('stores leaf hashes and a root that match a recomputation from the payloads', async () => {
      const rows = (await allRows(database())).sort((a, b) => a.leaf_index! - b.leaf_index!);
      const expectedLeaves = rows.map((r) => hex(leafHash(utf8(r.payload))));
      expect(rows.map((r) => r.leaf_hash)).toEqual(expectedLeaves);
      expect(rows.map((r) => referenceLeafHash(r.payload))).toEqual(expectedLeaves);

      const root = hex(rootFromLeafHashes(expectedLeaves.map((h) => new Uint8Array(Buffer.from(h, 'hex')))));
      expect(root).toBe(referenceRoot(expectedLeaves));
      const state = await store().treeState();
      expect(state?.rootHash).toBe(root);
      expect((await heads(database())).at(-1)).toEqual({ size: N, root });
    });

    it('agrees with the events read back through listEvents', async () => {
      const merged: StoredAuditEvent[] = [];
      for (const tenant of tenants) merged.push(...(await listAll(store(), tenant, 7)).items);
      expect(merged).toHaveLength(N);
      merged.sort((a, b) => a.leafIndex! - b.leafIndex!);
      expect(merged.map((e) => e.leafIndex)).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(merged.map((e) => requestIdOf(e.payload))).toEqual(first.map((e) => e.request_id));
      const leaves = merged.map((e) => hex(leafHash(utf8(e.payload))));
      expect((await store().treeState())?.rootHash).toBe(referenceRoot(leaves));
    });

    it('returns the requested slice of leaf hashes', async () => {
      const rows = (await allRows(database())).sort((a, b) => a.leaf_index! - b.leaf_index!);
      const all = rows.map((r) => referenceLeafHash(r.payload));
      expect(await store().leafHashes(0, N)).toEqual(all);
      expect(await store().leafHashes(0, 1)).toEqual(all.slice(0, 1));
      expect(await store().leafHashes(7, 19)).toEqual(all.slice(7, 19));
      expect(await store().leafHashes(N - 1, N)).toEqual([all[N - 1]]);
      expect(await store().leafHashes(5, 5)).toEqual([]);
      expect(await store().leafHashes(N, N + 3)).toEqual([]);
      expect(await store().leafHashes(N - 2, N + 3)).toEqual(all.slice(N - 2));
    });

    it('extends the tree with later appends; every stored tree head is the root of its prefix', async () => {
      const more = Array.from({ length: 9 }, (_, i) => auditEvent(clock, 'acme', N + i));
      await Promise.all(more.map((e) => log.append(e)));
      await log.integrateAll();

      const rows = await allRows(database());
      expect(rows).toHaveLength(N + 9);
      expect(rows.map((r) => r.leaf_index)).toEqual(Array.from({ length: N + 9 }, (_, i) => i));
      expect(rows.slice(N).map((r) => r.payload)).toEqual(more.map(serializeEvent));
      const leaves = rows.map((r) => referenceLeafHash(r.payload));
      expect(rows.map((r) => r.leaf_hash)).toEqual(leaves);
      expect((await store().treeState())?.rootHash).toBe(referenceRoot(leaves));

      const stored = await heads(database());
      expect(stored.map((h) => h.size)).toEqual([N, N + 9]);
      for (const h of stored) expect(h.root).toBe(referenceRoot(leaves.slice(0, h.size)));
    });

    it('integrates each row exactly once when two integrators race', async () => {
      const more = Array.from({ length: 23 }, (_, i) => auditEvent(clock, 'globex', 1000 + i));
      await Promise.all(more.map((e) => log.append(e)));
      const a = new AuditLog({ store: store(), clock, integrateBatch: 3 });
      const b = new AuditLog({ store: new SqlAuditStore(database().db, database().dialect), clock, integrateBatch: 4 });
      await Promise.all([a.integrateAll(), b.integrateAll(), a.integrateAll()]);

      const rows = await allRows(database());
      const total = N + 9 + 23;
      expect(rows.map((r) => r.leaf_index)).toEqual(Array.from({ length: total }, (_, i) => i));
      const leaves = rows.map((r) => referenceLeafHash(r.payload));
      expect(rows.map((r) => r.leaf_hash)).toEqual(leaves);
      const state = await store().treeState();
      expect(state?.size).toBe(total);
      expect(state?.rootHash).toBe(referenceRoot(leaves));
      for (const h of await heads(database())) expect(h.root).toBe(referenceRoot(leaves.slice(0, h.size)));
    });
  });

  describe('tenant isolation and paging', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlAuditStore(database().db, database().dialect);
    const acme = Array.from({ length: 10 }, (_, i) => auditEvent(clock, 'acme', i));
    const globex = Array.from({ length: 7 }, (_, i) => auditEvent(clock, 'globex', i));
    // Interleaved, so that the two tenants' ids alternate.
    const interleaved = Array.from({ length: 10 }, (_, i) => [acme[i], globex[i]]).flat().filter((e) => e !== undefined);

    beforeAll(async () => {
      const log = new AuditLog({ store: store(), clock });
      await Promise.all(interleaved.map((e) => log.append(e)));
    });

    it("never lists one tenant's events for another", async () => {
      const a = await store().listEvents('acme', 0, 100);
      const g = await store().listEvents('globex', 0, 100);
      expect(a.items.map((e) => e.payload)).toEqual(acme.map(serializeEvent));
      expect(g.items.map((e) => e.payload)).toEqual(globex.map(serializeEvent));
      expect(a.items.every((e) => e.tenant === 'acme')).toBe(true);
      expect(g.items.every((e) => e.tenant === 'globex')).toBe(true);
      expect(a.nextCursor).toBeUndefined();
      expect(g.nextCursor).toBeUndefined();

      const nobody = await store().listEvents('initech', 0, 100);
      expect(nobody.items).toEqual([]);
      expect(nobody.nextCursor).toBeUndefined();
      expect((await store().listEvents('ACME', 0, 100)).items).toEqual([]);

      // A cursor taken from one tenant's page does not open the other's events either.
      const cursorFromGlobex = g.items[0]!.id;
      const after = await store().listEvents('acme', cursorFromGlobex, 100);
      expect(after.items.every((e) => e.tenant === 'acme')).toBe(true);
      expect(after.items.map((e) => e.payload)).toEqual(acme.slice(1).map(serializeEvent));
    });

    it('pages through one tenant with the cursor: 3 + 3 + 3 + 1', async () => {
      const p1 = await store().listEvents('acme', 0, 3);
      const p2 = await store().listEvents('acme', p1.nextCursor!, 3);
      const p3 = await store().listEvents('acme', p2.nextCursor!, 3);
      const p4 = await store().listEvents('acme', p3.nextCursor!, 3);
      expect([p1, p2, p3, p4].map((p) => p.items.map((e) => requestIdOf(e.payload)))).toEqual([
        ['req-acme-0', 'req-acme-1', 'req-acme-2'],
        ['req-acme-3', 'req-acme-4', 'req-acme-5'],
        ['req-acme-6', 'req-acme-7', 'req-acme-8'],
        ['req-acme-9'],
      ]);
      expect([p1, p2, p3].map((p) => p.nextCursor)).toEqual([p1, p2, p3].map((p) => p.items.at(-1)!.id));
      expect(p4.nextCursor).toBeUndefined();
    });

    it('has no cursor when the last page is exactly full, for every page size', async () => {
      const exact = await store().listEvents('globex', 0, 7);
      expect(exact.items).toHaveLength(7);
      expect(exact.nextCursor).toBeUndefined();
      for (let limit = 1; limit <= 11; limit++) {
        const { items, pages } = await listAll(store(), 'acme', limit);
        expect(items.map((e) => e.payload)).toEqual(acme.map(serializeEvent));
        expect(pages).toBe(Math.ceil(acme.length / limit));
      }
    });

    it('shows leaf indexes in listed events once integrated', async () => {
      expect((await store().listEvents('acme', 0, 100)).items.every((e) => e.leafIndex === null)).toBe(true);
      await new AuditLog({ store: store(), clock }).integrateAll();
      const all = [...(await store().listEvents('acme', 0, 100)).items, ...(await store().listEvents('globex', 0, 100)).items];
      expect(all.map((e) => e.leafIndex).sort((x, y) => x! - y!)).toEqual(Array.from({ length: 17 }, (_, i) => i));
      // Leaf order is insertion order across tenants.
      const byLeaf = [...all].sort((x, y) => x.leafIndex! - y.leafIndex!);
      expect(byLeaf.map((e) => e.payload)).toEqual(interleaved.map(serializeEvent));
    });
  });

  describe('odd strings', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlAuditStore(database().db, database().dialect);

    it('stores payloads byte for byte and finds events by principal and resource ids with quotes, escapes and astral or lone surrogates', async () => {
      const ids = ['q"uote\\back', 'line\nbreak\u2028sep', 'astral😀é', 'lone\ud800x', '[1,"a"]'];
      const events: AuditEvent[] = ids.map((id, i) => ({ ...auditEvent(clock, 'acme', i, id), principal: { type: 'User', id, tenant: 'acme', auth_method: 'token' }, resource: { type: 'Tenant', id } }));
      const log = new AuditLog({ store: store(), clock, maxBatch: 3 });
      await Promise.all(events.map((e) => log.append(e)));
      expect((await allRows(database())).map((r) => r.payload)).toEqual(events.map(serializeEvent));
      for (const [i, id] of ids.entries()) {
        for (const filter of [{ principal: id }, { resource: id }]) {
          const page = await store().listEvents('acme', 0, 10, filter);
          expect(page.items.map((e) => requestIdOf(e.payload))).toEqual([events[i]!.request_id]);
        }
      }
    });
  });

  describe('tiles and entry bundles', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlAuditStore(database().db, database().dialect);
    const N = 300;

    /** tlog-tiles entry bundle: each entry as a 2-byte big-endian length and its bytes. */
    const bundleOf = (payloads: readonly string[]): Buffer =>
      Buffer.concat(payloads.flatMap((p) => {
        const bytes = Buffer.from(p, 'utf8');
        const length = Buffer.alloc(2);
        length.writeUInt16BE(bytes.length);
        return [length, bytes];
      }));

    beforeAll(async () => {
      const log = new AuditLog({ store: store(), clock, maxBatch: 64 });
      await Promise.all(Array.from({ length: N }, (_, i) => log.append(auditEvent(clock, 'acme', i, i % 7 === 0 ? 'ünï€😀' : ''))));
      await log.integrateAll();
      // Leaf order stops following row order: rows 10 and 200 trade places (and leaf hashes).
      const db = database().db;
      const [a, b] = await Promise.all([10, 200].map((leaf) => db.selectFrom('audit_events').select(['id', 'leaf_hash']).where('leaf_index', '=', leaf).executeTakeFirstOrThrow()));
      await db.updateTable('audit_events').set({ leaf_index: -1 }).where('id', '=', a!.id).execute();
      await db.updateTable('audit_events').set({ leaf_index: 10, leaf_hash: b!.leaf_hash }).where('id', '=', b!.id).execute();
      await db.updateTable('audit_events').set({ leaf_index: 200, leaf_hash: a!.leaf_hash }).where('id', '=', a!.id).execute();
    });

    const inLeafOrder = async (): Promise<Row[]> => (await allRows(database())).sort((x, y) => x.leaf_index! - y.leaf_index!);

    it('builds an entry bundle of the range in leaf order, byte for byte', async () => {
      const rows = await inLeafOrder();
      expect(rows[10]!.id).toBeGreaterThan(rows[11]!.id);
      for (const [start, end] of [[0, 256], [256, N], [8, 9], [0, 11]] as const) {
        const got = await store().entryBundle(start, end);
        expect(Buffer.from(got.body).equals(bundleOf(rows.slice(start, end).map((r) => r.payload)))).toBe(true);
        expect(got).toMatchObject({ count: end - start, first: start, last: end - 1, pruned: 0, firstPruned: null });
        expect(got.longest).toBe(Math.max(...rows.slice(start, end).map((r) => Buffer.byteLength(r.payload))));
      }
      expect(await store().entryBundle(N, N + 256)).toMatchObject({ count: 0, first: null, body: new Uint8Array(0) });
    });

    it('concatenates the hashes of a tile in index order, at level 0 and above', async () => {
      const rows = await inLeafOrder();
      expect(await store().tileHashesHex(0, 0, 256)).toBe(rows.slice(0, 256).map((r) => r.leaf_hash).join(''));
      expect(await store().tileHashesHex(0, 256, N)).toBe(rows.slice(256).map((r) => r.leaf_hash).join(''));
      // Interior nodes are stored from height 4 (subtrees of 16 leaves) up.
      const nodes = await database().db.selectFrom('audit_tree_nodes').select(['idx', 'hash']).where('height', '=', 4).orderBy('idx').execute();
      expect(nodes.map((n) => Number(n.idx))).toEqual(Array.from({ length: Math.floor(N / 16) }, (_, i) => i));
      expect(await store().tileHashesHex(4, 0, nodes.length)).toBe(nodes.map((n) => n.hash).join(''));
      expect(await store().tileHashesHex(4, 5, 9)).toBe(nodes.slice(5, 9).map((n) => n.hash).join(''));
    });

    it('counts the pruned entries of a range and names the first', async () => {
      await database().db.updateTable('audit_events').set({ payload: '', pruned_at: clock.now().toISOString() }).where('leaf_index', 'in', [30, 20]).execute();
      expect(await store().entryBundle(0, 256)).toMatchObject({ count: 256, pruned: 2, firstPruned: 20 });
      expect(await store().entryBundle(25, 31)).toMatchObject({ count: 6, pruned: 1, firstPruned: 30 });
      expect(await store().entryBundle(31, 40)).toMatchObject({ count: 9, pruned: 0, firstPruned: null });
    });
  });

  describe('integration in batches', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlAuditStore(database().db, database().dialect);

    async function reset(): Promise<void> {
      const db = database().db;
      await db.deleteFrom('audit_events').execute();
      await db.deleteFrom('audit_tree').execute();
      await db.deleteFrom('audit_tree_heads').execute();
      await db.deleteFrom('audit_tree_nodes').execute();
    }

    /**
     * Appends `rounds[i]` events per round (concurrently within a round), integrating one batch
     * after each round and everything at the end. Returns the tree and the sizes integrate()
     * reported.
     */
    async function run(events: readonly AuditEvent[], rounds: readonly number[], integrateBatch: number) {
      await reset();
      const log = new AuditLog({ store: store(), clock, integrateBatch });
      const integrated: number[] = [];
      let next = 0;
      for (const n of rounds) {
        await Promise.all(events.slice(next, next + n).map((e) => log.append(e)));
        next += n;
        integrated.push(await log.integrate());
      }
      for (let got = await log.integrate(); got > 0; got = await log.integrate()) integrated.push(got);
      const rows = await allRows(database());
      return { state: await store().treeState(), rows, heads: await heads(database()), integrated };
    }

    it('gives the same tree with integrateBatch 7 as in one batch', async () => {
      const events = Array.from({ length: 30 }, (_, i) => auditEvent(clock, i % 2 ? 'acme' : 'globex', i));
      const batched = await run(events, [30], 7);
      expect(batched.integrated).toEqual([7, 7, 7, 7, 2]);
      expect(batched.heads.map((h) => h.size)).toEqual([7, 14, 21, 28, 30]);

      const single = await run(events, [30], 1000);
      expect(single.integrated).toEqual([30]);
      expect(single.heads.map((h) => h.size)).toEqual([30]);

      const leaves = events.map((e) => referenceLeafHash(serializeEvent(e)));
      expect(batched.state?.rootHash).toBe(referenceRoot(leaves));
      expect(single.state).toEqual(batched.state);
      expect(batched.rows.map((r) => [r.leaf_index, r.leaf_hash])).toEqual(leaves.map((h, i) => [i, h]));
      expect(single.rows.map((r) => [r.leaf_index, r.leaf_hash])).toEqual(leaves.map((h, i) => [i, h]));
      for (const h of batched.heads) expect(h.root).toBe(referenceRoot(leaves.slice(0, h.size)));
    });

    it('integrates each row exactly once when two integrators race on an empty tree', async () => {
      await reset();
      const events = Array.from({ length: 20 }, (_, i) => auditEvent(clock, 'acme', i));
      const writer = new AuditLog({ store: store(), clock });
      await Promise.all(events.map((e) => writer.append(e)));
      const a = new AuditLog({ store: store(), clock, integrateBatch: 5 });
      const b = new AuditLog({ store: store(), clock, integrateBatch: 3 });
      await Promise.all([a.integrateAll(), b.integrateAll()]);
      const leaves = events.map((e) => referenceLeafHash(serializeEvent(e)));
      expect((await allRows(database())).map((r) => [r.leaf_index, r.leaf_hash])).toEqual(leaves.map((h, i) => [i, h]));
      expect(await store().treeState()).toMatchObject({ size: 20, rootHash: referenceRoot(leaves) });
    });

    it('gives the same root for any batch size and any interleaving of appends and integration', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 4 }),
          fc.integer({ min: 1, max: 9 }),
          fc.array(fc.string({ unit: 'grapheme', maxLength: 6 }), { minLength: 1, maxLength: 4 }),
          async (rounds, integrateBatch, notes) => {
            const total = rounds.reduce((a, b) => a + b, 0);
            const events = Array.from({ length: total }, (_, i) => auditEvent(clock, i % 3 ? 'acme' : 'globex', i, notes[i % notes.length]));
            const leaves = events.map((e) => referenceLeafHash(serializeEvent(e)));

            const batched = await run(events, rounds, integrateBatch);
            const single = await run(events, [total], total + 1);

            expect(batched.integrated.every((n) => n <= integrateBatch)).toBe(true);
            expect(batched.integrated.reduce((a, b) => a + b, 0)).toBe(total);
            expect(batched.rows.map((r) => [r.leaf_index, r.leaf_hash])).toEqual(leaves.map((h, i) => [i, h]));
            expect(single.rows.map((r) => [r.leaf_index, r.leaf_hash])).toEqual(leaves.map((h, i) => [i, h]));
            if (total === 0) {
              expect(batched.state).toBeUndefined();
              expect(single.state).toBeUndefined();
            } else {
              expect(batched.state?.size).toBe(total);
              expect(batched.state?.rootHash).toBe(referenceRoot(leaves));
              expect(single.state).toEqual(batched.state);
            }
            for (const h of batched.heads) expect(h.root).toBe(referenceRoot(leaves.slice(0, h.size)));
          },
        ),
        { numRuns: target.name === 'sqlite' ? 15 : 6 },
      );
    });
  });

  describe('failures', () => {
    const database = freshDatabase(target);
    const clock = new ManualClock();
    const store = () => new SqlAuditStore(database().db, database().dialect);

    it('rejects appends with audit.write_failed when the store refuses the write, and never writes them later', async () => {
      const outcomes: Array<[number, boolean]> = [];
      const log = new AuditLog({ store: store(), clock, onAppend: (count, ok) => outcomes.push([count, ok]) });
      await sql`alter table audit_events rename to audit_events_parked`.execute(database().db);
      let settled: PromiseSettledResult<void>[];
      try {
        settled = await Promise.allSettled([0, 1, 2].map((i) => log.append(auditEvent(clock, 'acme', i))));
      } finally {
        await sql`alter table audit_events_parked rename to audit_events`.execute(database().db);
      }
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const s of settled) {
        const reason = (s as PromiseRejectedResult).reason as unknown;
        expect(reason).toBeInstanceOf(AuditError);
        expect((reason as AuditError).code).toBe('audit.write_failed');
        expect((reason as AuditError).status).toBe(503);
      }
      expect(outcomes).toEqual([[3, false]]);
      expect(await store().count()).toBe(0);

      // The log keeps working, and only the new event is written.
      const ok = auditEvent(clock, 'acme', 3);
      await log.append(ok);
      expect(outcomes).toEqual([
        [3, false],
        [1, true],
      ]);
      expect((await allRows(database())).map((r) => r.payload)).toEqual([serializeEvent(ok)]);
    });

    it('rejects appends with audit.write_failed when the database is closed', async () => {
      const other = await openFresh(target);
      try {
        const log = new AuditLog({ store: new SqlAuditStore(other.database.db, other.database.dialect), clock });
        await other.database.close();
        const err = await log.append(auditEvent(clock, 'acme', 0)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(AuditError);
        expect((err as AuditError).code).toBe('audit.write_failed');
      } finally {
        await other.cleanup();
      }
    });

    it('refuses appends beyond maxPending with audit.pushback, and accepts again once drained', async () => {
      const before = await store().count();
      const log = new AuditLog({ store: store(), clock, maxPending: 3 });
      const accepted = [0, 1, 2].map((i) => log.append(auditEvent(clock, 'globex', i)));
      const refused = await log.append(auditEvent(clock, 'globex', 3)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(AuditError);
      expect((refused as AuditError).code).toBe('audit.pushback');
      await Promise.all(accepted);
      expect(await store().count()).toBe(before + 3);
      const listed = await store().listEvents('globex', 0, 100);
      expect(listed.items.map((e) => requestIdOf(e.payload))).toEqual(['req-globex-0', 'req-globex-1', 'req-globex-2']);

      await log.append(auditEvent(clock, 'globex', 4));
      expect(await store().count()).toBe(before + 4);
    });
  });
});
