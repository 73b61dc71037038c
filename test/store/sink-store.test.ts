import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event.js';
import { AuditLog } from '../../src/audit/log.js';
import { ManualClock } from '../../src/core/clock.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { SqlSinkStore } from '../../src/store/sink-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';
import { testEvent } from '../support/audit-event.js';

/**
 * Contract suite for the SinkStore port (src/audit/sink-store.ts) against every store in
 * TEST_DATABASES: integrated events come back in leaf order with their payload byte-exact, pending
 * ones are invisible, and cursors are durable, per sink and monotonic.
 */

function event(seq: number): AuditEvent {
  return testEvent(seq, {
    tenant: seq % 2 ? 'acme' : 'globex',
    details: { note: seq % 3 ? 'plain' : 'ünï€😀 "quoted" \\ ]' },
  });
}

describe.each(TEST_DATABASES)('SinkStore on $name', (target) => {
  const database = freshDatabase(target);
  const clock = new ManualClock();
  const sinks = () => new SqlSinkStore(database().db, database().dialect, clock);

  it('reads only integrated events, in leaf order, with byte-exact payloads', async () => {
    const audit = new SqlAuditStore(database().db, database().dialect);
    const log = new AuditLog({ store: audit, clock, integrateBatch: 4 });
    expect(await sinks().readIntegrated(0, 100)).toEqual([]);
    expect(await sinks().integratedSize()).toBe(0);

    const first = Array.from({ length: 10 }, (_, i) => event(i));
    await Promise.all(first.map((e) => log.append(e)));
    // Appended but not integrated: no leaf index yet, so nothing to deliver.
    expect(await sinks().readIntegrated(0, 100)).toEqual([]);
    await log.integrateAll();
    await Promise.all([10, 11, 12].map((i) => log.append(event(i))));

    const rows = await database().db.selectFrom('audit_events').select(['leaf_index', 'payload']).where('leaf_index', 'is not', null).orderBy('leaf_index').execute();
    const expected = rows.map((r) => ({ leafIndex: Number(r.leaf_index), payload: r.payload }));
    expect(expected.map((e) => e.leafIndex)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(await sinks().readIntegrated(0, 100)).toEqual(expected);
    expect(await sinks().readIntegrated(3, 4)).toEqual(expected.slice(3, 7));
    expect(await sinks().readIntegrated(9, 4)).toEqual(expected.slice(9));
    expect(await sinks().readIntegrated(10, 4)).toEqual([]);
    expect(await sinks().integratedSize()).toBe(10);
    for (const e of await sinks().readIntegrated(0, 100)) expect(typeof e.leafIndex).toBe('number');

    await log.integrateAll();
    expect(await sinks().integratedSize()).toBe(13);
    expect((await sinks().readIntegrated(10, 100)).map((e) => e.leafIndex)).toEqual([10, 11, 12]);
  });

  it('starts every cursor at 0 and keeps them per sink', async () => {
    expect(await sinks().cursor('never-seen')).toBe(0);
    await sinks().advance('a', 5);
    await sinks().advance('b', 2);
    expect(await sinks().cursor('a')).toBe(5);
    expect(await sinks().cursor('b')).toBe(2);
    // Durable: a new adapter over the same database reads the same values.
    expect(await new SqlSinkStore(database().db, database().dialect, new ManualClock(0)).cursor('a')).toBe(5);
  });

  it('never moves a cursor backwards, even when advances race', async () => {
    await sinks().advance('mono', 10);
    await sinks().advance('mono', 3);
    expect(await sinks().cursor('mono')).toBe(10);
    await sinks().advance('mono', 10);
    expect(await sinks().cursor('mono')).toBe(10);
    await Promise.all([17, 12, 40, 25, 39].map((n) => sinks().advance('mono', n)));
    expect(await sinks().cursor('mono')).toBe(40);
    await sinks().advance('mono', 2 ** 40);
    expect(await sinks().cursor('mono')).toBe(2 ** 40);
  });

  it('records when a cursor last moved', async () => {
    clock.set(new Date('2026-03-01T00:00:00.000Z'));
    await sinks().advance('stamped', 1);
    const row = await database().db.selectFrom('audit_sink_cursors').selectAll().where('name', '=', 'stamped').executeTakeFirstOrThrow();
    expect(row.updated_at).toBe('2026-03-01T00:00:00.000Z');
  });

  it('refuses a negative or fractional leaf index', async () => {
    await expect(sinks().advance('bad', -1)).rejects.toThrow(RangeError);
    await expect(sinks().advance('bad', 1.5)).rejects.toThrow(RangeError);
    expect(await sinks().cursor('bad')).toBe(0);
  });

  it('runs work under the sink lock; on PostgreSQL a second holder is turned away without waiting', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inside!: () => void;
    const entered = new Promise<void>((r) => (inside = r));
    const first = sinks().withSinkLock('locked', async () => {
      inside();
      await held;
      return 'first';
    });
    await entered;
    const second = await sinks().withSinkLock('locked', async () => 'second');
    const otherName = await sinks().withSinkLock('other', async () => 'other');
    release();
    expect(await first).toEqual({ acquired: true, value: 'first' });
    expect(otherName).toEqual({ acquired: true, value: 'other' });
    // SQLite has a single process per file: there is nobody to exclude.
    expect(second).toEqual(target.name === 'postgres' ? { acquired: false } : { acquired: true, value: 'second' });
    // Released with the transaction.
    expect(await sinks().withSinkLock('locked', async () => 'again')).toEqual({ acquired: true, value: 'again' });
  });

});
