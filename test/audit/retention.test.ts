import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/audit/checkpoint.js';
import { type Hash, leafHash, toHex, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { AuditPruner } from '../../src/audit/pruner.js';
import { SinkDispatcher } from '../../src/audit/sink.js';
import { TileHashes } from '../../src/audit/tiles.js';
import { storeTreeReader } from '../../src/audit/tree-reader.js';
import { type VerifyReport, verifyLog } from '../../src/audit/verify.js';
import { SqlLegalHoldStore } from '../../src/store/legal-hold-store.js';
import { SqlPruneStore } from '../../src/store/prune-store.js';
import { SqlSinkStore } from '../../src/store/sink-store.js';
import { type LogFixture, openLogFixture } from '../support/audit-log.js';
import { ManualTimers, RecordingSink } from '../support/audit-sinks.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * Retention (src/audit/pruner.ts): which rows lose their payload and when, and that everything
 * that reads the log still checks what is left. Time is a ManualClock; nothing sleeps.
 */

const HOUR = 3_600_000;
const kinds = (r: VerifyReport): string[] => [...new Set(r.problems.map((p) => p.kind))].sort();

describe.each(TEST_DATABASES)('audit retention ($name)', (target) => {
  let log: LogFixture;

  const pruner = (options: { sinkNames?: string[]; batchSize?: number; maxBatchesPerRun?: number } = {}) =>
    new AuditPruner({
      store: new SqlPruneStore(log.database.db, log.database.dialect),
      clock: log.clock,
      retentionMs: HOUR,
      sinkNames: options.sinkNames ?? [],
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.maxBatchesPerRun === undefined ? {} : { maxBatchesPerRun: options.maxBatchesPerRun }),
    });

  const prunedIndexes = async (): Promise<number[]> =>
    (await log.store.leafEntries(0, 1_000_000)).filter((e) => e.prunedAt !== null).map((e) => e.leafIndex);

  const verify = () => verifyLog(log.source, { verifier: log.verifier });

  beforeEach(async () => {
    log = await openLogFixture(target);
    // Leaves 0–9 recorded at t0, 10–24 two hours later; checkpoints at 10 and 25.
    await log.grow(10);
    log.clock.advance(2 * HOUR);
    await log.grow(15);
  });
  afterEach(async () => {
    await log.close();
  });

  it('prunes only payloads older than the retention period, keeping leaf index and hash', async () => {
    const before = await log.store.leafEntries(0, 25);
    expect(await pruner().prune()).toEqual({ pruned: 10, stopped: 'done' });
    const after = await log.store.leafEntries(0, 25);
    expect(await prunedIndexes()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const [i, row] of after.entries()) {
      expect(row.leafHash).toBe(before[i]!.leafHash);
      expect(row.leafIndex).toBe(i);
      if (i < 10) expect(row).toMatchObject({ payload: '', prunedAt: log.clock.now().toISOString() });
      else expect(row).toEqual(before[i]);
    }
    // The query columns held personal data too: cleared with the payload.
    const cols = await log.database.db.selectFrom('audit_events').select(['principal_id', 'action', 'event_time']).where('leaf_index', '<', 10).execute();
    expect(cols.every((c) => c.action === null && c.event_time === null && c.principal_id === null)).toBe(true);
    // Nothing else is due until the second group ages.
    expect(await pruner().prune()).toEqual({ pruned: 0, stopped: 'done' });
    log.clock.advance(HOUR);
    expect((await pruner().prune()).pruned).toBe(15);
  });

  it('works in bounded batches and a bounded number of batches per run', async () => {
    log.clock.advance(2 * HOUR);
    const p = pruner({ batchSize: 4, maxBatchesPerRun: 2 });
    expect(await p.prune()).toEqual({ pruned: 8, stopped: 'cap' });
    expect(await prunedIndexes()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await p.prune()).toEqual({ pruned: 8, stopped: 'cap' });
    expect(await p.prune()).toEqual({ pruned: 8, stopped: 'cap' });
    expect(await p.prune()).toEqual({ pruned: 1, stopped: 'done' });
    expect((await prunedIndexes()).length).toBe(25);
  });

  it('never prunes an event that is not integrated or not covered by a signed checkpoint', async () => {
    // Pending (no leaf index) and integrated-but-unsigned rows, both old enough.
    await log.store.insert([{ tenant: 'acme', recordedAt: new Date(0).toISOString(), payload: '{"pending":true}' }]);
    await log.audit.integrateAll(); // leaf 25, no checkpoint yet
    await log.store.insert([{ tenant: 'acme', recordedAt: new Date(0).toISOString(), payload: '{"pending":2}' }]);
    log.clock.advance(2 * HOUR);
    expect((await pruner().prune()).pruned).toBe(25);
    const rows = await log.database.db.selectFrom('audit_events').select(['leaf_index', 'payload', 'pruned_at']).where('recorded_at', '=', new Date(0).toISOString()).orderBy('id').execute();
    expect(rows.map((r) => [r.leaf_index === null ? null : Number(r.leaf_index), r.payload, r.pruned_at])).toEqual([
      [25, '{"pending":true}', null],
      [null, '{"pending":2}', null],
    ]);
    // The checkpointer still signs over the unpruned leaf above the latest checkpoint.
    expect((await log.checkpointer.checkpoint())?.size).toBe(26);
  });

  it('prunes nothing while a legal hold is on, and resumes after its release', async () => {
    const hold = new SqlLegalHoldStore(log.database.db);
    expect(await hold.get()).toEqual({ enabled: false, reason: '', since: undefined });
    const placed = await hold.set(true, 'case 2026-114', log.clock.now().toISOString());
    expect(placed).toEqual({ enabled: true, reason: 'case 2026-114', since: log.clock.now().toISOString() });
    log.clock.advance(10 * HOUR);
    // Placing it again keeps the original `since`.
    expect((await hold.set(true, 'still', log.clock.now().toISOString())).since).toBe(placed.since);
    expect(await pruner().prune()).toEqual({ pruned: 0, stopped: 'held' });
    expect(await prunedIndexes()).toEqual([]);
    expect(await hold.set(false, 'case closed', log.clock.now().toISOString())).toEqual({ enabled: false, reason: 'case closed', since: undefined });
    expect(await pruner().prune()).toEqual({ pruned: 25, stopped: 'done' });
  });

  it("never prunes what a configured sink has not delivered (its durable cursor bounds pruning)", async () => {
    log.clock.advance(2 * HOUR);
    const sinks = new SqlSinkStore(log.database.db, log.database.dialect, log.clock);
    // A sink that never delivered has cursor 0: nothing may go.
    expect(await pruner({ sinkNames: ['siem', 'archive'] }).prune()).toEqual({ pruned: 0, stopped: 'done' });
    await sinks.advance('siem', 20);
    await sinks.advance('archive', 12);
    expect((await pruner({ sinkNames: ['siem', 'archive'] }).prune()).pruned).toBe(12);
    expect(Math.max(...(await prunedIndexes()))).toBe(11);
    // What the slowest sink reads next is intact.
    expect((await sinks.readIntegrated(12, 1))[0]!.payload).not.toBe('');
    await sinks.advance('archive', 25);
    expect((await pruner({ sinkNames: ['siem', 'archive'] }).prune()).pruned).toBe(8);
    expect((await pruner({ sinkNames: ['siem'] }).prune()).pruned).toBe(0);
  });

  it('gives a sink configured after pruning only the unpruned events, never an empty payload', async () => {
    await pruner().prune(); // leaves 0–9
    const sink = new RecordingSink('late');
    const timers = new ManualTimers();
    const dispatcher = new SinkDispatcher({
      store: new SqlSinkStore(log.database.db, log.database.dialect, log.clock),
      sinks: [sink],
      clock: log.clock,
      batchSize: 4,
      schedule: timers.schedule,
    });
    dispatcher.start();
    await dispatcher.settled();
    await dispatcher.stop();
    expect(sink.received).toEqual(Array.from({ length: 15 }, (_, i) => 10 + i));
    expect(sink.batches.flat().every((e) => e.payload !== '' && !e.pruned)).toBe(true);
    expect(await new SqlSinkStore(log.database.db, log.database.dialect, log.clock).cursor('late')).toBe(25);
  });

  it('keeps inclusion and consistency proofs of pruned leaves valid', async () => {
    const before = await log.store.leafHashes(0, 25);
    log.clock.advance(2 * HOUR);
    await pruner().prune();
    const tiles = new TileHashes(storeTreeReader(log.store));
    const cp25 = openCheckpoint((await log.checkpoints.get(25))!.note, log.verifier);
    const cp10 = openCheckpoint((await log.checkpoints.get(10))!.note, log.verifier);
    expect(await prunedIndexes()).toHaveLength(25);
    for (const index of [0, 7, 9, 24]) {
      const leaf: Hash = new Uint8Array(Buffer.from(before[index]!, 'hex'));
      verifyInclusion(index, 25, leaf, await tiles.inclusionProof(index, 25), cp25.rootHash);
    }
    verifyConsistency(10, 25, await tiles.consistencyProof(10, 25), cp10.rootHash, cp25.rootHash);
  });

  describe('offline verification of a pruned log', () => {
    beforeEach(async () => {
      log.clock.advance(2 * HOUR);
      await log.grow(5); // leaves 25–29, recent: not pruned
      await pruner().prune();
      expect(await prunedIndexes()).toHaveLength(25);
    });

    it('passes, counting pruned entries separately', async () => {
      const r = await verify();
      expect(r.problems).toEqual([]);
      expect(r).toMatchObject({ ok: true, entriesChecked: 30, entriesPruned: 25, firstBadIndex: undefined });
      expect(r.latest?.size).toBe(30);
    });

    it('still catches an altered unpruned payload, with or without a recomputed leaf hash', async () => {
      await log.setPayload(27, '{"forged":true}');
      let r = await verify();
      expect(r.ok).toBe(false);
      expect(r.problems[0]).toMatchObject({ kind: 'leaf_hash_mismatch', index: 27 });
      expect(r.firstBadIndex).toBe(27);
      await log.setPayload(27, '{"forged":true}', { rehash: true });
      r = await verify();
      expect(kinds(r)).toEqual(['root_mismatch']);
      expect(r.problems[0]).toMatchObject({ range: [25, 30], size: 30 });
    });

    it('catches a payload blanked without the pruned marker', async () => {
      await log.setPayload(28, '');
      const r = await verify();
      expect(r.problems[0]).toMatchObject({ kind: 'leaf_hash_mismatch', index: 28 });
      expect(r.firstBadIndex).toBe(28);
    });

    it('catches a forged "prune" of a recent event whose leaf hash was replaced too', async () => {
      await log.database.db
        .updateTable('audit_events')
        .set({ payload: '', pruned_at: log.clock.now().toISOString(), leaf_hash: toHex(leafHash(new TextEncoder().encode('anything'))) })
        .where('leaf_index', '=', 26)
        .execute();
      const r = await verify();
      expect(r.ok).toBe(false);
      expect(kinds(r)).toEqual(['root_mismatch']);
      expect(r.problems[0]).toMatchObject({ range: [25, 30], size: 30 });
    });

    it('catches a pruned leaf whose stored hash was replaced', async () => {
      await log.database.db.updateTable('audit_events').set({ leaf_hash: toHex(leafHash(new TextEncoder().encode('x'))) }).where('leaf_index', '=', 3).execute();
      const r = await verify();
      expect(kinds(r)).toEqual(['root_mismatch']);
      expect(r.firstBadIndex).toBe(0);
    });

    it('checks a payload that carries the pruned marker but is not blank, as a normal entry', async () => {
      await log.database.db.updateTable('audit_events').set({ pruned_at: log.clock.now().toISOString(), payload: '{"forged":1}' }).where('leaf_index', '=', 29).execute();
      const r = await verify();
      expect(r.problems[0]).toMatchObject({ kind: 'leaf_hash_mismatch', index: 29 });
      expect(r.firstBadIndex).toBe(29);
    });

    it('lets the checkpointer keep signing after pruning', async () => {
      await log.grow(3);
      expect((await log.checkpoints.latest())?.size).toBe(33);
      expect((await verify()).ok).toBe(true);
    });
  });
});
