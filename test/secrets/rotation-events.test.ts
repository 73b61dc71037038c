import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resumeLost } from '../../src/server/event-resume.js';
import { SecretEventHub } from '../../src/secrets/rotation/events.js';
import { openSecretEventFeed, type SecretEventFeed } from '../../src/secrets/rotation/feed.js';
import type { StoredSecretEvent } from '../../src/secrets/rotation/store.js';

/** The change log as the store keeps it: ids handed out in commit order (RotationStore.appendEvent). */
function fakeLog() {
  const rows: StoredSecretEvent[] = [];
  let head = 0;
  return {
    rows,
    commit(tenant = 'acme', path = `p${head + 1}`) {
      rows.push({ id: ++head, tenant, kind: 'kv.written', mountPath: 'secret', path, version: 1, occurredAt: '2026-01-01T00:00:00.000Z', previousReadableUntil: null });
      return head;
    },
    prune(upTo: number) {
      rows.splice(0, rows.filter((r) => r.id <= upTo).length);
    },
    store: {
      async lastEventId() {
        return head;
      },
      async firstEventId() {
        return rows[0]?.id;
      },
      async eventsAfter(afterId: number, limit: number) {
        return rows.filter((r) => r.id > afterId).slice(0, limit);
      },
      async tenantEventsAfter(tenant: string, afterId: number, limit: number, upTo?: number) {
        return rows.filter((r) => r.tenant === tenant && r.id > afterId && (upTo === undefined || r.id <= upTo)).slice(0, limit);
      },
    },
  };
}

describe('SecretEventHub', () => {
  it("delivers only the subscriber's tenant, in id order, starts at the log's end, and stops reading when nobody listens", async () => {
    const log = fakeLog();
    log.commit();
    const hub = new SecretEventHub({ store: log.store, pollMs: 0 });
    const acme: number[] = [];
    const other: number[] = [];
    const a = await hub.subscribe('acme', (e) => acme.push(e.id));
    const b = await hub.subscribe('other', (e) => other.push(e.id));
    log.commit('other');
    log.commit('acme');
    log.commit('acme');
    await hub.poll();
    await hub.poll();
    expect(acme).toEqual([3, 4]);
    expect(other).toEqual([2]);
    a();
    b();
    expect(hub.subscribers).toBe(0);
    log.commit();
    const again: number[] = [];
    await hub.subscribe('acme', (e) => again.push(e.id));
    await hub.poll();
    expect(again).toEqual([]);
  });

  it('keeps delivering to the others when a listener throws', async () => {
    const log = fakeLog();
    const hub = new SecretEventHub({ store: log.store, pollMs: 0 });
    const got: number[] = [];
    await hub.subscribe('acme', () => {
      throw new Error('boom');
    });
    await hub.subscribe('acme', (e) => got.push(e.id));
    log.commit();
    await hub.poll();
    expect(got).toEqual([1]);
  });
});

type Op =
  | { readonly op: 'write'; readonly tenant: 'acme' | 'other'; readonly path: 'a' | 'b' | 'c' }
  | { readonly op: 'poll' }
  | { readonly op: 'connect' }
  | { readonly op: 'disconnect' }
  | { readonly op: 'step' };

const ops: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('write' as const), tenant: fc.constantFrom('acme' as const, 'other' as const), path: fc.constantFrom('a' as const, 'b' as const, 'c' as const) }),
  fc.constant<Op>({ op: 'poll' }),
  fc.constant<Op>({ op: 'connect' }),
  fc.constant<Op>({ op: 'disconnect' }),
  fc.constant<Op>({ op: 'step' }),
);

describe('openSecretEventFeed (replay, then live)', () => {
  it('gives a client that disconnects and resumes every event of its paths exactly once, in id order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(ops, { maxLength: 40 }), fc.integer({ min: 1, max: 4 }), fc.subarray(['a', 'b', 'c'], { minLength: 1 }), async (s, steps, pageSize, paths) => {
        const log = fakeLog();
        // Every store read resolves when the scheduler says: writes, polls and reconnections interleave with them.
        const store = {
          lastEventId: s.scheduleFunction(log.store.lastEventId),
          firstEventId: s.scheduleFunction(log.store.firstEventId),
          eventsAfter: s.scheduleFunction(log.store.eventsAfter),
          tenantEventsAfter: s.scheduleFunction(log.store.tenantEventsAfter),
        };
        const hub = new SecretEventHub({ store, pollMs: 0 });
        const received: number[] = [];
        /** The SSE `Last-Event-ID`: the last id the client received; it starts from the beginning of the log. */
        let lastId = 0;
        let feed: SecretEventFeed | undefined;
        let opening: Promise<void> | undefined;
        let wanted = false;
        const connect = () => {
          wanted = true;
          if (feed || opening) return;
          opening = openSecretEventFeed({
            hub,
            store,
            tenant: 'acme',
            resumeAfter: lastId,
            lost: resumeLost,
            deliver: (e) => {
              expect(e.tenant).toBe('acme');
              // The route sends only what the subscriber may read; here, its paths.
              if (!paths.includes(e.path)) return;
              received.push(e.id);
              lastId = e.id;
            },
            resync: () => expect.fail('nothing was pruned'),
            overflow: () => expect.fail('the buffer is large enough'),
            pageSize,
          }).then((opened) => {
            opening = undefined;
            if (wanted) feed = opened;
            else opened.close();
          });
        };
        const disconnect = () => {
          wanted = false;
          feed?.close();
          feed = undefined;
        };
        for (const step of steps) {
          if (step.op === 'write') log.commit(step.tenant, step.path);
          else if (step.op === 'poll') void hub.poll();
          else if (step.op === 'connect') connect();
          else if (step.op === 'disconnect') disconnect();
          else if (s.count() > 0) await s.waitOne();
        }
        connect();
        await s.waitFor(opening ?? Promise.resolve());
        await s.waitFor(hub.poll());
        await s.waitAll();
        const expected = log.rows.filter((r) => r.tenant === 'acme' && paths.includes(r.path)).map((r) => r.id);
        expect(received).toEqual(expected);
        await hub.close();
      }),
      { numRuns: 300 },
    );
  });

  it('sends resync when the resume point was pruned, then only live events after the log end', async () => {
    const log = fakeLog();
    for (let i = 0; i < 5; i++) log.commit();
    log.prune(3);
    const hub = new SecretEventHub({ store: log.store, pollMs: 0 });
    const got: (number | 'resync')[] = [];
    const feed = await openSecretEventFeed({
      hub,
      store: log.store,
      tenant: 'acme',
      resumeAfter: 1,
      lost: resumeLost,
      deliver: (e) => got.push(e.id),
      resync: () => got.push('resync'),
      overflow: () => expect.fail('no overflow'),
    });
    log.commit();
    await hub.poll();
    expect(got).toEqual(['resync', 6]);
    feed.close();
    log.commit();
    await hub.poll();
    expect(got).toEqual(['resync', 6]);
  });

  it('closes the feed when more live events arrive during the replay than it buffers', async () => {
    const log = fakeLog();
    log.commit();
    const hub = new SecretEventHub({ store: log.store, pollMs: 0 });
    let overflowed = 0;
    const delivered: number[] = [];
    const feed = openSecretEventFeed({
      hub,
      store: {
        ...log.store,
        // The replay is slow: three events commit and reach the hub meanwhile.
        tenantEventsAfter: async (...args: Parameters<typeof log.store.tenantEventsAfter>) => {
          for (let i = 0; i < 3; i++) log.commit();
          await hub.poll();
          return log.store.tenantEventsAfter(...args);
        },
      },
      tenant: 'acme',
      resumeAfter: 0,
      lost: resumeLost,
      deliver: (e) => delivered.push(e.id),
      resync: () => expect.fail('no resync'),
      overflow: () => overflowed++,
      maxBuffered: 2,
    });
    await feed;
    expect(overflowed).toBe(1);
    expect(delivered).toEqual([]);
    expect(hub.subscribers).toBe(0);
  });
});
