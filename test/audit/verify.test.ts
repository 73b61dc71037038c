import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openCheckpoint, signCheckpoint } from '../../src/audit/checkpoint.js';
import { nextCheckpointDelay } from '../../src/audit/checkpointer.js';
import { generateNoteKey, parseVerifierKey } from '../../src/audit/note.js';
import { type VerifyReport, verifyLog } from '../../src/audit/verify.js';
import { AuditError } from '../../src/core/errors.js';
import { type LogFixture, openLogFixture } from '../support/audit-log.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * Each attack on the stored log is carried out with the access an attacker of the store has
 * (SQL writes; for the last one, the signing key too), and must be reported with the index
 * where the log first goes wrong. Every test first shows that the untouched log verifies, so
 * that each attack test fails if detection is removed.
 */

const kinds = (r: VerifyReport): string[] => [...new Set(r.problems.map((p) => p.kind))].sort();

describe.each(TEST_DATABASES)('log verification ($name)', (target) => {
  let log: LogFixture;

  beforeEach(async () => {
    log = await openLogFixture(target);
    // Checkpoints at 10, 25 and 40 entries.
    await log.grow(10);
    await log.grow(15);
    await log.grow(15);
    const clean = await verifyLog(log.source, { verifier: log.verifier });
    expect(clean.problems).toEqual([]);
    expect(clean).toMatchObject({ ok: true, entriesChecked: 40, checkpointsChecked: 3, unsignedEntries: 0, firstBadIndex: undefined });
    expect(clean.latest?.size).toBe(40);
  });
  afterEach(async () => {
    await log.close();
  });

  it('detects an altered payload at its index', async () => {
    await log.setPayload(17, '{"forged":true}');
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(r.ok).toBe(false);
    expect(r.firstBadIndex).toBe(17);
    expect(r.problems[0]).toMatchObject({ kind: 'leaf_hash_mismatch', index: 17 });
  });

  it('detects an altered payload whose leaf hash was recomputed too, between the checkpoints around it', async () => {
    await log.setPayload(17, '{"forged":true}', { rehash: true });
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(kinds(r)).toEqual(['root_mismatch']);
    expect(r.problems[0]).toMatchObject({ range: [10, 25], size: 25 });
    expect(r.firstBadIndex).toBe(10);
  });

  it('detects a deleted row', async () => {
    await log.database.db.deleteFrom('audit_events').where('leaf_index', '=', 12).execute();
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(r.problems[0]).toMatchObject({ kind: 'entry_missing', index: 12 });
    expect(r.firstBadIndex).toBe(12);
  });

  it('detects a swapped pair of payloads', async () => {
    const rows = await log.store.leafEntries(5, 7);
    await log.setPayload(5, rows[1]!.payload);
    await log.setPayload(6, rows[0]!.payload);
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(r.problems.filter((p) => p.kind === 'leaf_hash_mismatch').map((p) => p.index)).toEqual([5, 6]);
    expect(r.firstBadIndex).toBe(5);
  });

  it('detects a swapped pair of whole rows (payload and leaf hash)', async () => {
    const rows = await log.store.leafEntries(5, 7);
    await log.setPayload(5, rows[1]!.payload, { rehash: true });
    await log.setPayload(6, rows[0]!.payload, { rehash: true });
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(kinds(r)).toEqual(['root_mismatch']);
    expect(r.firstBadIndex).toBe(0);
  });

  it('detects a truncated tail', async () => {
    await log.database.db.deleteFrom('audit_events').where('leaf_index', '>=', 30).execute();
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(r.problems[0]).toMatchObject({ kind: 'entry_missing', index: 30 });
    expect(r.firstBadIndex).toBe(30);
  });

  it('detects a forged checkpoint signed by another key under the log\'s name', async () => {
    const impostor = generateNoteKey('rampart.local/audit/test').signer;
    const latest = (await log.checkpoints.latest())!;
    const cp = openCheckpoint(latest.note, log.verifier);
    await log.checkpoints.insert({ ...latest, size: 41, note: signCheckpoint({ size: 41, rootHash: cp.rootHash }, impostor) });
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'checkpoint_invalid', size: 41 })]);
  });

  it('detects a checkpoint whose body was edited', async () => {
    const cp25 = (await log.checkpoints.get(25))!;
    const lines = cp25.note.split('\n');
    lines[2] = Buffer.alloc(32, 7).toString('base64');
    await log.database.db.updateTable('audit_checkpoints').set({ note: lines.join('\n') }).where('size', '=', 25).execute();
    const r = await verifyLog(log.source, { verifier: log.verifier });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'checkpoint_invalid', size: 25 })]);
  });

  it('detects two signed checkpoints of one size with different roots (a split view)', async () => {
    const key = generateNoteKey('rampart.local/audit/split').signer;
    const notes = [signCheckpoint({ size: 25, rootHash: new Uint8Array(32).fill(1) }, key), signCheckpoint({ size: 25, rootHash: new Uint8Array(32).fill(2) }, key)];
    const r = await verifyLog({ ...log.source, checkpoints: async () => notes }, { verifier: parseVerifierKey(key.verifierKey) });
    expect(kinds(r)).toContain('checkpoint_conflict');
  });

  it('passes a rewritten history with a fresh checkpoint on its own, but not against a checkpoint kept earlier', async () => {
    const kept = openCheckpoint((await log.checkpoints.get(25))!.note, log.verifier);
    await log.setPayload(3, '{"rewritten":true}');
    await log.rewriteAndResign();
    const alone = await verifyLog(log.source, { verifier: log.verifier });
    expect(alone.ok).toBe(true); // internally consistent: this is why witnesses keep checkpoints
    const witnessed = await verifyLog(log.source, { verifier: log.verifier, trusted: { size: kept.size, rootHash: kept.rootHash } });
    expect(witnessed.ok).toBe(false);
    expect(witnessed.problems).toEqual([expect.objectContaining({ kind: 'root_mismatch', size: 25 })]);
  });

  it('never signs a checkpoint inconsistent with the previous one', async () => {
    await log.setPayload(17, '{"forged":true}', { rehash: true });
    await log.database.db.updateTable('audit_events').set({ leaf_index: null, leaf_hash: null }).where('leaf_index', '>=', 0).execute();
    await log.database.db.deleteFrom('audit_tree').execute();
    await log.database.db.deleteFrom('audit_tree_heads').execute();
    await log.database.db.deleteFrom('audit_tree_nodes').execute();
    await log.audit.integrateAll(); // a rebuilt tree of 40 with a different root
    const err = await log.grow(1).catch((e: unknown) => e); // grow signs: it must refuse
    expect(await log.checkpointer.checkpoint().catch((e: unknown) => (e as AuditError).code)).toBe('audit.log_inconsistent');
    expect(err).toBeInstanceOf(AuditError);
    expect((err as AuditError).code).toBe('audit.log_inconsistent');
    expect((err as AuditError).details).toMatchObject({ previous: { size: 40 } });
    expect((await log.checkpoints.latest())?.size).toBe(40);
  });

  it('signs after integration once notified, no sooner than the interval allows', async () => {
    await log.audit.append({ ...JSON.parse((await log.store.leafEntries(0, 1))[0]!.payload), request_id: 'late' });
    await log.audit.integrateAll();
    log.clock.advance(1000); // a full interval since the last checkpoint: due at once
    log.checkpointer.notify();
    await vi.waitFor(async () => expect((await log.checkpoints.latest())?.size).toBe(41), { timeout: 500 });
  });

  it('signs nothing while the tree does not grow', async () => {
    expect(await log.checkpointer.checkpoint()).toBeUndefined();
    await log.grow(1);
    expect((await log.checkpoints.latest())?.size).toBe(41);
  });
});

describe('checkpoint rate', () => {
  it('signs at most once per interval and at once when the interval has passed', () => {
    expect(nextCheckpointDelay(undefined, 5_000, 1_000)).toBe(0);
    expect(nextCheckpointDelay(5_000, 5_300, 1_000)).toBe(700);
    expect(nextCheckpointDelay(5_000, 6_000, 1_000)).toBe(0);
    expect(nextCheckpointDelay(5_000, 9_000, 1_000)).toBe(0);
  });
});
