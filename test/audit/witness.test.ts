import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateNoteKey, parseVerifierKey } from '../../src/audit/note.js';
import { type WitnessState, parseWitnessState, runWitness } from '../../src/audit/witness.js';
import { AuditError } from '../../src/core/errors.js';
import { type LogFixture, openLogFixture } from '../support/audit-log.js';
import { TEST_DATABASES } from '../support/databases.js';

describe.each(TEST_DATABASES)('witness ($name)', (target) => {
  let log: LogFixture;
  let state: WitnessState | undefined;

  const run = () => runWitness(log.source, { verifier: log.verifier, state, clock: log.clock });

  beforeEach(async () => {
    state = undefined;
    log = await openLogFixture(target);
    await log.grow(10);
    const first = await run();
    expect(first).toMatchObject({ advanced: true, state: { size: 10, verifier_key: log.verifier.verifierKey } });
    state = first.state;
  });
  afterEach(async () => {
    await log.close();
  });

  it('advances as the log grows consistently', async () => {
    await log.grow(5);
    const r = await run();
    expect(r.report.ok).toBe(true);
    expect(r).toMatchObject({ advanced: true, state: { size: 15 } });
    state = r.state;
    expect((await run()).advanced).toBe(false);
  });

  it('detects a rewritten history that carries a fresh, validly signed checkpoint', async () => {
    await log.grow(5);
    await log.setPayload(2, '{"rewritten":true}');
    await log.rewriteAndResign();
    const r = await run();
    expect(r.report.ok).toBe(false);
    expect(r.report.problems).toEqual([expect.objectContaining({ kind: 'root_mismatch', size: 10 })]);
    expect(r.advanced).toBe(false);
    expect(r.state).toBe(state);
  });

  it('detects a rollback: the tail removed and re-signed at a smaller size', async () => {
    await log.database.db.deleteFrom('audit_events').where('leaf_index', '>=', 6).execute();
    await log.rewriteAndResign();
    const r = await run();
    expect(r.report.problems).toEqual([expect.objectContaining({ kind: 'rollback', index: 6, size: 10 })]);
    expect(r.state).toBe(state);
  });

  it('refuses a state file that pins another key or was edited', () => {
    const text = JSON.stringify(state);
    expect(parseWitnessState(text, log.verifier)).toMatchObject({ size: 10 });
    const other = parseVerifierKey(generateNoteKey('rampart.local/audit/test').signer.verifierKey);
    expect(() => parseWitnessState(text, other)).toThrow(AuditError);
    const edited = JSON.stringify({ ...state, checkpoint: state!.checkpoint.replace('\n10\n', '\n11\n') });
    expect(() => parseWitnessState(edited, log.verifier)).toThrow(/does not verify/);
  });
});
