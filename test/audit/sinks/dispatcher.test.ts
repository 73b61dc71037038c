import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event.js';
import { AuditLog } from '../../../src/audit/log.js';
import { type SinkStatus, SinkDispatcher, backoffDelay } from '../../../src/audit/sink.js';
import { ManualClock } from '../../../src/core/clock.js';
import { SqlAuditStore } from '../../../src/store/audit-store.js';
import { SqlSinkStore } from '../../../src/store/sink-store.js';
import { ManualTimers, MemorySinkStore, RecordingSink } from '../../support/audit-sinks.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';
import { testEvent } from '../../support/audit-event.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

function setup(options: { events?: number; batchSize?: number; sinks: RecordingSink[]; store?: MemorySinkStore }) {
  const store = options.store ?? new MemorySinkStore();
  store.append(options.events ?? 0);
  const timers = new ManualTimers();
  const errors: Array<[string, string]> = [];
  const statuses: SinkStatus[] = [];
  const dispatcher = new SinkDispatcher({
    store,
    sinks: options.sinks,
    clock: new ManualClock(),
    batchSize: options.batchSize ?? 10,
    pollMs: 1000,
    initialBackoffMs: 100,
    maxBackoffMs: 1600,
    schedule: timers.schedule,
    onError: (sink, err) => errors.push([sink, (err as Error).message]),
    onStatus: (s) => statuses.push(s),
  });
  /** Fires timers and waits for the cycles they start, `rounds` times. */
  const turn = async (rounds = 1) => {
    for (let i = 0; i < rounds; i++) {
      timers.fire();
      await dispatcher.settled();
    }
  };
  return { store, timers, errors, statuses, dispatcher, turn };
}

describe('SinkDispatcher', () => {
  it('delivers every event exactly once, in leaf order, in bounded batches, and advances the cursor', async () => {
    const sink = new RecordingSink('siem');
    const { store, dispatcher, timers, statuses } = setup({ events: 47, batchSize: 10, sinks: [sink] });
    dispatcher.start();
    await dispatcher.settled();
    expect(sink.received).toEqual(range(0, 47));
    expect(sink.batches.map((b) => b.length)).toEqual([10, 10, 10, 10, 7]);
    expect(sink.batches.flat().map((e) => e.payload)).toEqual(store.events.map((e) => e.payload));
    expect(store.cursors.get('siem')).toBe(47);
    expect(statuses.at(-1)).toMatchObject({ name: 'siem', nextLeafIndex: 47, lag: 0, delivered: 47, consecutiveFailures: 0 });
    // Caught up: it polls again after pollMs, and picks up what was integrated meanwhile.
    expect(timers.requested).toEqual([1000]);
    store.append(3);
    timers.fire();
    await dispatcher.settled();
    expect(sink.received).toEqual(range(0, 50));
    await dispatcher.stop();
    expect(sink.closed).toBe(true);
  });

  it('retries failed deliveries with capped exponential backoff, and then delivers every event at least once', async () => {
    // Attempts 1-6 fail, then every third attempt fails.
    const sink = new RecordingSink('flaky', { failures: (n) => n <= 6 || n % 3 === 0 });
    const { store, dispatcher, timers, errors } = setup({ events: 35, batchSize: 4, sinks: [sink] });
    dispatcher.start();
    await dispatcher.settled();
    for (let i = 0; i < 40 && store.cursors.get('flaky') !== 35; i++) {
      timers.fire();
      await dispatcher.settled();
    }
    expect(store.cursors.get('flaky')).toBe(35);
    expect(sink.received).toEqual(range(0, 35));
    // 100, 200, 400, 800, 1600, 1600 (capped), then 100 after each isolated failure.
    expect(timers.requested.slice(0, 6)).toEqual([100, 200, 400, 800, 1600, 1600]);
    expect(timers.requested.slice(6).every((ms) => ms === 100 || ms === 1000)).toBe(true);
    expect(errors.length).toBe(sink.attempts - sink.batches.length);
    expect(errors.every(([name]) => name === 'flaky')).toBe(true);
    expect(dispatcher.status()[0]).toMatchObject({ consecutiveFailures: 0, lastError: undefined, lag: 0 });
    await dispatcher.stop();
  });

  it('delivers a batch again when the cursor could not be written (at least once, never lost)', async () => {
    const sink = new RecordingSink('siem');
    const { store, dispatcher, turn } = setup({ events: 12, batchSize: 5, sinks: [sink] });
    store.failAdvances = 1;
    dispatcher.start();
    await dispatcher.settled();
    expect(store.cursors.get('siem')).toBeUndefined();
    expect(dispatcher.status()[0]).toMatchObject({ consecutiveFailures: 1, lastError: 'store unavailable', lag: 12 });
    await turn();
    expect(store.cursors.get('siem')).toBe(12);
    expect(sink.received).toEqual([...range(0, 5), ...range(0, 12)]);
    await dispatcher.stop();
  });

  it('resumes from the durable cursor after a restart, losing nothing', async () => {
    const store = new MemorySinkStore();
    const first = new RecordingSink('siem', { failures: (n) => n >= 3 });
    const a = setup({ events: 30, batchSize: 6, sinks: [first], store });
    a.dispatcher.start();
    await a.dispatcher.settled();
    expect(first.received).toEqual(range(0, 12));
    await a.dispatcher.stop();
    expect(store.cursors.get('siem')).toBe(12);

    store.append(4);
    const second = new RecordingSink('siem');
    const b = setup({ batchSize: 6, sinks: [second], store });
    b.dispatcher.start();
    await b.dispatcher.settled();
    expect(second.received).toEqual(range(12, 34));
    expect([...first.received, ...second.received]).toEqual(range(0, 34));
    await b.dispatcher.stop();
  });

  it('keeps delivering to other sinks while one is stuck, and stop() releases the stuck one', async () => {
    const stuck = new RecordingSink('stuck', { stuck: true });
    const healthy = new RecordingSink('healthy');
    const { store, dispatcher, timers } = setup({ events: 25, batchSize: 10, sinks: [stuck, healthy] });
    dispatcher.start();
    // Only the healthy sink's cycle can finish; the stuck one never settles, so settled() would hang.
    await waitFor(() => healthy.received.length === 25);
    expect(healthy.received).toEqual(range(0, 25));
    store.append(5);
    timers.fire();
    await waitFor(() => healthy.received.length === 30);
    expect(stuck.received).toEqual([]);
    expect(stuck.attempts).toBe(1);
    const byName = Object.fromEntries(dispatcher.status().map((s) => [s.name, s]));
    expect(byName.healthy).toMatchObject({ nextLeafIndex: 30, lag: 0 });
    expect(byName.stuck).toMatchObject({ nextLeafIndex: 0, delivered: 0 });

    // stop() gives the in-flight delivery its grace period, then closes the stuck sink.
    const stopping = dispatcher.stop();
    expect(stuck.closed).toBe(false);
    timers.fire();
    await stopping;
    expect(stuck.closed).toBe(true);
    expect(store.cursors.get('stuck')).toBeUndefined();
    expect(store.cursors.get('healthy')).toBe(30);
  });

  it('lets an in-flight delivery finish and record its cursor on stop(), so a clean restart repeats nothing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sink = new RecordingSink('siem');
    const deliver = sink.deliver.bind(sink);
    sink.deliver = async (batch) => {
      await gate;
      await deliver(batch);
    };
    const { store, dispatcher } = setup({ events: 4, sinks: [sink] });
    dispatcher.start();
    await new Promise((r) => setImmediate(r));
    const stopping = dispatcher.stop();
    expect(sink.closed).toBe(false);
    release();
    await stopping;
    expect(sink.closed).toBe(true);
    expect(sink.received).toEqual(range(0, 4));
    expect(store.cursors.get('siem')).toBe(4);
  });

  it('wakes an idle sink on notify() instead of waiting for the poll, but not one in backoff', async () => {
    const sink = new RecordingSink('siem', { failures: (n) => n === 2 });
    const { store, dispatcher, timers } = setup({ events: 3, sinks: [sink] });
    dispatcher.notify(); // before start: ignored
    expect(sink.attempts).toBe(0);
    dispatcher.start();
    await dispatcher.settled();
    store.append(2);
    dispatcher.notify();
    await dispatcher.settled();
    expect(sink.attempts).toBe(2); // failed
    expect(timers.pending).toBe(1);
    dispatcher.notify();
    await dispatcher.settled();
    expect(sink.attempts).toBe(2); // still backing off
    timers.fire();
    await dispatcher.settled();
    expect(sink.received).toEqual(range(0, 5));
    await dispatcher.stop();
  });

  it('stands by while another replica holds the sink lock, and takes over when it is released', async () => {
    const sink = new RecordingSink('siem');
    const { store, dispatcher, timers } = setup({ events: 8, sinks: [sink] });
    store.lockedElsewhere.add('siem');
    dispatcher.start();
    await dispatcher.settled();
    expect(sink.attempts).toBe(0);
    expect(dispatcher.status()[0]).toMatchObject({ standby: true, consecutiveFailures: 0 });
    expect(timers.requested).toEqual([1000]);
    // The other replica delivered the first 5 and went away.
    store.cursors.set('siem', 5);
    store.lockedElsewhere.delete('siem');
    timers.fire();
    await dispatcher.settled();
    expect(sink.received).toEqual(range(5, 8));
    expect(dispatcher.status()[0]).toMatchObject({ standby: false, nextLeafIndex: 8, lag: 0 });
    await dispatcher.stop();
  });

  it('runs another cycle when notify() arrives during one, instead of waiting for the poll', async () => {
    const sink = new RecordingSink('siem');
    const { store, dispatcher, timers } = setup({ events: 2, sinks: [sink] });
    const deliver = sink.deliver.bind(sink);
    sink.deliver = async (batch) => {
      // New events are integrated while the first batch is in flight: this cycle read too early.
      if (sink.attempts === 0) {
        store.append(3);
        dispatcher.notify();
      }
      await deliver(batch);
    };
    dispatcher.start();
    await dispatcher.settled();
    expect(sink.received).toEqual(range(0, 5));
    expect(sink.batches.map((b) => b.length)).toEqual([2, 3]);
    expect(timers.pending).toBe(1);
    await dispatcher.stop();
  });

  it('refuses to deliver across a gap in leaf indexes', async () => {
    const store = new MemorySinkStore();
    store.append(5);
    store.events.splice(2, 1);
    const sink = new RecordingSink('siem');
    const { dispatcher, errors } = setup({ sinks: [sink], store });
    dispatcher.start();
    await dispatcher.settled();
    expect(sink.attempts).toBe(0);
    expect(errors[0]?.[1]).toMatch(/gap: expected leaf 2, found 3/);
    await dispatcher.stop();
  });

  it('refuses two sinks with one name (they would share a cursor)', () => {
    expect(() => setup({ sinks: [new RecordingSink('x'), new RecordingSink('x')] })).toThrow(/two audit sinks are named "x"/);
  });

  it('computes backoff as initial·2^(n-1), capped, and never decreasing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 10_000_000 }), fc.integer({ min: 1, max: 200 }), (initial, max, n) => {
        const d = backoffDelay(n, initial, max);
        expect(d).toBeLessThanOrEqual(max);
        expect(d).toBe(Math.min(max, initial * 2 ** (n - 1)));
        expect(backoffDelay(n + 1, initial, max)).toBeGreaterThanOrEqual(d);
      }),
    );
  });
});

/** Polls the event loop (no timers) until `done`; fails after many turns. */
async function waitFor(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (done()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}

function auditEvent(seq: number): AuditEvent {
  return testEvent(seq, { tenant: 'acme', outcome: seq % 4 === 0 ? 'denied' : 'success' });
}

describe.each(TEST_DATABASES)('SinkDispatcher over the SQL store on $name', (target) => {
  const database = freshDatabase(target);

  it('resumes from the durable cursor after a restart and delivers the stored payloads verbatim', async () => {
    const clock = new ManualClock();
    const log = new AuditLog({ store: new SqlAuditStore(database().db, database().dialect), clock });
    await Promise.all(range(0, 23).map((i) => log.append(auditEvent(i))));
    await log.integrateAll();

    const firstSink = new RecordingSink('siem', { failures: (n) => n >= 3 });
    const first = new SinkDispatcher({ store: new SqlSinkStore(database().db, database().dialect, clock), sinks: [firstSink], clock, batchSize: 5, schedule: new ManualTimers().schedule });
    first.start();
    await first.settled();
    await first.stop();
    expect(firstSink.received).toEqual(range(0, 10));

    // More events arrive while the server is down.
    await Promise.all(range(23, 30).map((i) => log.append(auditEvent(i))));
    await log.integrateAll();

    const secondSink = new RecordingSink('siem');
    const other = new RecordingSink('archive');
    const second = new SinkDispatcher({ store: new SqlSinkStore(database().db, database().dialect, clock), sinks: [secondSink, other], clock, batchSize: 5, schedule: new ManualTimers().schedule });
    second.start();
    await second.settled();
    await second.stop();
    expect(secondSink.received).toEqual(range(10, 30));
    expect(other.received).toEqual(range(0, 30));

    const stored = await database().db.selectFrom('audit_events').select(['leaf_index', 'payload']).orderBy('leaf_index').execute();
    expect([...firstSink.batches.flat(), ...secondSink.batches.flat()]).toEqual(stored.map((r) => ({ leafIndex: Number(r.leaf_index), payload: r.payload })));
    expect(await new SqlSinkStore(database().db, database().dialect, clock).cursor('siem')).toBe(30);
    expect(await new SqlSinkStore(database().db, database().dialect, clock).cursor('archive')).toBe(30);
  });

  it.runIf(target.name === 'postgres')('lets only one of two replicas deliver to a sink at a time: every event exactly once', async () => {
    const clock = new ManualClock();
    const log = new AuditLog({ store: new SqlAuditStore(database().db, database().dialect), clock });
    await Promise.all(range(0, 40).map((i) => log.append(auditEvent(i))));
    await log.integrateAll();
    const sinks = [new RecordingSink('replicated'), new RecordingSink('replicated')];
    const replicas = sinks.map(
      (sink) => new SinkDispatcher({ store: new SqlSinkStore(database().db, database().dialect, clock), sinks: [sink], clock, batchSize: 3, schedule: new ManualTimers().schedule }),
    );
    for (const r of replicas) r.start();
    await Promise.all(replicas.map((r) => r.settled()));
    await Promise.all(replicas.map((r) => r.stop()));
    const total = await new SqlSinkStore(database().db, database().dialect, clock).integratedSize();
    expect(total).toBeGreaterThanOrEqual(40);
    const all = sinks.flatMap((s) => s.received).sort((a, b) => a - b);
    expect(all).toEqual(range(0, total));
    expect(await new SqlSinkStore(database().db, database().dialect, clock).cursor('replicated')).toBe(total);
  });

});