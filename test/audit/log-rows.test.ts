import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event.js';
import { AuditLog } from '../../src/audit/log.js';
import { indexFieldsOf } from '../../src/audit/query.js';
import type { AuditRowInput, AuditStore, Integration, PendingEntry, TreeState } from '../../src/audit/store.js';
import { ManualClock } from '../../src/core/clock.js';
import { testEvent } from '../support/audit-event.js';

/**
 * AuditLog's own work around the store: the indexed columns it hands over with each row (taken
 * from the event, never re-parsed from the payload) and integration that yields to the event loop
 * between batches.
 */

/** Ids as requests can make them: NUL (`%00` in a URL), lone surrogates, long strings. */
const id = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfff', 'é'.repeat(300)));

const event = fc
  .record({
    principal: fc.option(id),
    action: fc.option(fc.string({ maxLength: 30 })),
    resource: fc.option(id),
    outcome: fc.constantFrom('success', 'denied', 'invalid', 'failed', 'unauthenticated' as const),
    // Large enough, now and then, for event-bounds.ts to shorten the payload (ids cut to 128 characters).
    padding: fc.option(fc.integer({ min: 1, max: 70_000 })),
  })
  .map(({ principal, action, resource, outcome, padding }): AuditEvent =>
    testEvent(1, {
      principal: principal === null ? null : { type: 'Rampart::Token', id: principal, tenant: 'default', auth_method: 'token' },
      action,
      resource: resource === null ? null : { type: 'Rampart::Secret', id: resource },
      outcome,
      ...(padding === null ? {} : { details: { blob: 'p'.repeat(padding) } }),
    }),
  );

describe('AuditLog.rowFor', () => {
  const log = new AuditLog({ store: {} as AuditStore, clock: new ManualClock() });

  it('gives the indexed columns the payload would give, shortened payloads included', () => {
    fc.assert(
      fc.property(event, (e) => {
        const row = log.rowFor(e);
        expect(row.index).toEqual(indexFieldsOf(row.payload));
      }),
      { numRuns: 300 },
    );
  });

  it('indexes the shortened id of an oversized event, not the id the request carried', () => {
    const long = 'r'.repeat(1000);
    const row = log.rowFor(testEvent(2, { resource: { type: 'Rampart::Secret', id: long }, details: { blob: 'p'.repeat(70_000) } }));
    expect(row.index.resource).not.toBe(long);
    expect(row.index.resource).toBe(indexFieldsOf(row.payload).resource);
  });
});

describe('AuditLog.integrateAll and integrateBacklog', () => {
  /**
   * A store with `pending` rows that records the size of each integrated batch; `arriving` more
   * rows are appended while each batch is integrated, as under a steady request load.
   */
  function pendingStore(initial: number, arriving = 0) {
    let pending = initial;
    let next = 0;
    const batches: number[] = [];
    const store = {
      async insert(_rows: readonly AuditRowInput[]) {},
      async integratePending(limit: number, integrate: (s: TreeState | undefined, p: readonly PendingEntry[]) => Integration) {
        const rows = Array.from({ length: Math.min(limit, pending - next) }, (_, i) => ({ id: next + i + 1, payload: `{"n":${next + i}}` }));
        if (rows.length === 0) return undefined;
        next += rows.length;
        pending += arriving;
        batches.push(rows.length);
        return integrate(undefined, rows);
      },
    } as unknown as AuditStore;
    return { store, batches };
  }

  it('lets other work run between batches and still integrates everything', async () => {
    const { store, batches } = pendingStore(10);
    const log = new AuditLog({ store, clock: new ManualClock(), integrateBatch: 3 });
    const turns: number[] = [];
    let ticking = true;
    const tick = () => {
      turns.push(batches.length);
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await log.integrateAll();
    ticking = false;
    expect(batches).toEqual([3, 3, 3, 1]);
    // Another task ran after each of the first three batches, before the next one started.
    for (const done of [1, 2, 3]) expect(turns).toContain(done);
  });

  it('integrates the backlog in whole batches and stops at the first partial one while rows keep arriving', async () => {
    const { store, batches } = pendingStore(10, 2);
    const log = new AuditLog({ store, clock: new ManualClock(), integrateBatch: 4 });
    await log.integrateBacklog();
    // 10 pending, 2 more arriving with each batch: 4 (8 left), 4 (6), 4 (4), 4 (2), then 2 < 4 stops it.
    expect(batches).toEqual([4, 4, 4, 4, 2]);
    // The 2 rows that arrived during the last batch wait for the next call; integrateAll would not have stopped.
    await log.integrateBacklog();
    expect(batches).toEqual([4, 4, 4, 4, 2, 2]);
  });

  it('integrateAll drains everything, a partial batch included', async () => {
    const { store, batches } = pendingStore(6);
    const log = new AuditLog({ store, clock: new ManualClock(), integrateBatch: 4 });
    await log.integrateAll();
    await log.integrateAll();
    expect(batches).toEqual([4, 2]);
  });
});
