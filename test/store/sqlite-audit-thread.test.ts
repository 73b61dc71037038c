import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import { AuditLog } from '../../src/audit/log.js';
import { type CompactRange, rootFromLeafHashes } from '../../src/audit/merkle.js';
import { AuditError, StoreError, isRampartError } from '../../src/core/errors.js';
import { ManualClock } from '../../src/core/clock.js';
import type { Sealer } from '../../src/core/sealer.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { SqlCheckpointStore } from '../../src/store/checkpoint-store.js';
import { type StoreDatabase, openDatabase } from '../../src/store/database.js';
import { SqliteAuditThread } from '../../src/store/sqlite-audit-thread.js';
import { testEvent } from '../support/audit-event.js';

/**
 * The audit tree's work on a thread of its own (src/store/sqlite-audit-thread.ts): the tree it
 * builds is the one the event loop builds, appends racing with it all land in it, a checkpoint is
 * still refused over a tampered leaf, a failed store stops its writes, and a thread that cannot
 * run leaves the work to the loop.
 */

const open: { database: StoreDatabase; thread?: SqliteAuditThread; dir: string }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.thread?.close();
    await o.database.close();
    rmSync(o.dir, { recursive: true, force: true });
  }
});

const plainSealer: Sealer = {
  encrypt: (_t, _id, plaintext) => Buffer.from(plaintext).toString('base64'),
  decrypt: (_t, _id, ciphertext) => Buffer.from(ciphertext, 'base64'),
};

interface Log {
  readonly database: StoreDatabase;
  readonly store: SqlAuditStore;
  readonly log: AuditLog;
  readonly thread: SqliteAuditThread | undefined;
  readonly clock: ManualClock;
}

async function openLog(options: { thread: boolean; path?: string; onStopped?: (err: unknown) => void }): Promise<Log> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-audit-thread-'));
  const database = await openDatabase({ dataDir: dir });
  const store = new SqlAuditStore(database.db, 'sqlite');
  const thread = options.thread
    ? new SqliteAuditThread({
        path: options.path ?? database.sqliteFile!.path,
        writeLock: database.sqliteFile!.writeLock,
        store,
        startAfter: 0,
        ...(options.onStopped ? { onStopped: options.onStopped } : {}),
      })
    : undefined;
  open.push({ database, dir, ...(thread ? { thread } : {}) });
  const clock = new ManualClock(Date.UTC(2026, 10, 25));
  const log = new AuditLog({ store, clock, ...(thread ? { integrator: thread.integrate } : {}) });
  return { database, store, log, thread, clock };
}

/** Appends events 0..n−1 of a fixed sequence, all at once. */
const appendAll = (log: AuditLog, from: number, n: number) => Promise.all(Array.from({ length: n }, (_, i) => log.append(testEvent(from + i))));

async function treeOf(database: StoreDatabase) {
  const db = database.db;
  return {
    tree: await db.selectFrom('audit_tree').select(['size', 'frontier', 'root_hash']).executeTakeFirst(),
    leaves: await db.selectFrom('audit_events').select(['id', 'leaf_index', 'leaf_hash']).orderBy('id').execute(),
    nodes: await db.selectFrom('audit_tree_nodes').select(['height', 'idx', 'hash']).orderBy('height').orderBy('idx').execute(),
  };
}

describe('the SQLite audit thread', () => {
  it('builds the tree the event loop builds: leaves, interior nodes, head and root', async () => {
    const here = await openLog({ thread: false });
    const there = await openLog({ thread: true });
    // 1,000 entries over batches that are not multiples of the worker's transactions.
    for (const [from, n] of [
      [0, 1],
      [1, 300],
      [301, 699],
    ] as const) {
      await appendAll(here.log, from, n);
      await appendAll(there.log, from, n);
      await here.log.integrateAll();
      await there.log.integrateAll();
    }
    expect(there.thread!.running).toBe(true);
    const expected = await treeOf(here.database);
    const actual = await treeOf(there.database);
    expect(actual).toEqual(expected);
    expect(actual.tree?.size).toBe(1000);
    expect(actual.nodes.length).toBeGreaterThan(0);
    // And it is RFC 6962's tree of those leaves.
    const root = rootFromLeafHashes(actual.leaves.map((l) => Buffer.from(l.leaf_hash!, 'hex')));
    expect(Buffer.from(root).toString('hex')).toBe(actual.tree?.root_hash);
  });

  it('integrates every append made while it works, in append order', async () => {
    const { database, log, thread } = await openLog({ thread: true });
    const appends: Promise<void>[] = [];
    const integrations: Promise<void>[] = [];
    for (let round = 0; round < 20; round++) {
      appends.push(appendAll(log, round * 150, 150).then(() => undefined));
      integrations.push(log.integrateAll());
    }
    await Promise.all([...appends, ...integrations]);
    await log.integrateAll();
    expect(thread!.running).toBe(true);
    const { leaves, tree } = await treeOf(database);
    expect(tree?.size).toBe(3000);
    expect(leaves.map((l) => l.leaf_index)).toEqual(leaves.map((_, i) => i));
  });

  it('refuses a checkpoint over a leaf altered or removed after integration, as on the event loop', async () => {
    const { database, store, log, thread, clock } = await openLog({ thread: true });
    const checkpointer = await Checkpointer.open({
      checkpoints: new SqlCheckpointStore(database.db, 'sqlite'),
      audit: store,
      sealer: plainSealer,
      clock,
      origin: 'rampart.local/audit/thread-test',
      extend: thread!.extend,
    });
    await appendAll(log, 0, 300);
    await log.integrateAll();
    expect((await checkpointer.checkpoint())?.size).toBe(300);
    expect(thread!.running).toBe(true);

    await appendAll(log, 300, 300);
    await log.integrateAll();
    await database.db.updateTable('audit_events').set({ payload: '{"forged":true}' }).where('leaf_index', '=', 450).execute();
    const altered = await checkpointer.checkpoint().catch((e: unknown) => e);
    expect(isRampartError(altered) && altered.code).toBe('audit.log_inconsistent');
    expect(isRampartError(altered) && (altered.details as { first_bad_index: number }).first_bad_index).toBe(450);

    await database.db.updateTable('audit_events').set({ leaf_index: null }).where('leaf_index', '=', 450).execute();
    const removed = await checkpointer.checkpoint().catch((e: unknown) => e);
    expect(isRampartError(removed) && (removed.details as { first_bad_index: number }).first_bad_index).toBe(450);
    expect(isRampartError(removed) && removed.message).toContain('leaf 450 is missing');
    expect((await new SqlCheckpointStore(database.db, 'sqlite').latest())?.size).toBe(300);
    await checkpointer.close();
  });

  it.each(['idle', 'close', 'in-flight'])('keeps no process alive and closes in full (%s)', { timeout: 60_000 }, (mode) => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-audit-thread-exit-'));
    try {
      const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../support/audit-thread-exit.ts', import.meta.url)), dir, mode], {
        encoding: 'utf8',
        timeout: 50_000,
      });
      expect({ status: child.status, stdout: child.stdout, stderr: child.stderr.replace(/npm warn.*\n/g, '') }).toEqual({
        status: 0,
        stdout: mode === 'idle' ? 'started true\n' : 'closed\n',
        stderr: '',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes nothing once the store has failed, and says why with the store\'s code', async () => {
    const { database, log, store, thread, clock } = await openLog({ thread: true });
    await appendAll(log, 0, 40);
    await log.integrateAll();
    expect(thread!.running).toBe(true);
    await appendAll(log, 40, 20);
    // What a failed flush of the WAL on the event loop's connection does (src/store/sqlite-durable-commit.ts).
    database.sqliteFile!.writeLock.fail();
    const refused = await thread!.integrate(1000, clock.now().toISOString()).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(StoreError);
    expect(isRampartError(refused) && refused.code).toBe('store.unavailable');
    expect((refused as Error).message).toMatch(/flush of the SQLite WAL failed/);
    // The worker is still there, refusing; nothing of the 20 pending rows was integrated.
    expect(thread!.running).toBe(true);
    expect((await store.treeState())?.size).toBe(40);
    expect(await store.pendingEntries(100)).toHaveLength(20);
  });

  it("passes on the code and details of the worker's error", async () => {
    const { log, thread } = await openLog({ thread: true });
    await appendAll(log, 0, 10);
    await log.integrateAll();
    // A frontier the worker cannot read: 3 leaves need 2 hashes (RFC 9162 §2.1.1's compact range).
    const torn = { toJSON: () => ({ size: 3, hashes: [] }) } as unknown as CompactRange;
    const refused = await thread!.extend(torn, 10).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isRampartError(refused) && refused.code).toBe('audit.range_invalid');
    expect(refused).toBeInstanceOf(AuditError);
    expect(isRampartError(refused) && refused.details).toMatchObject({ size: 3 });
  });

  it('leaves the work to the event loop when its worker cannot run', async () => {
    let stopped: unknown;
    const { log, store, thread } = await openLog({
      thread: true,
      path: join(tmpdir(), 'rampart-no-such-dir', 'missing.db'),
      onStopped: (err) => (stopped = err),
    });
    await appendAll(log, 0, 100);
    await log.integrateAll();
    expect(stopped).toBeDefined();
    expect(thread!.running).toBe(false);
    expect((await store.treeState())?.size).toBe(100);
  });
});
