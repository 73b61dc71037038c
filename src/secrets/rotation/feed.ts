import type { SecretEventHub } from './events.js';
import type { RotationStore, StoredSecretEvent } from './store.js';

export interface SecretEventFeedOptions {
  readonly hub: Pick<SecretEventHub, 'subscribe'>;
  readonly store: Pick<RotationStore, 'firstEventId' | 'lastEventId' | 'tenantEventsAfter'>;
  readonly tenant: string;
  /** The last id the client received (`Last-Event-ID`); undefined: live events only. */
  readonly resumeAfter: number | undefined;
  /** Whether the log no longer holds every event after `resumeAfter` (server/event-resume.ts `resumeLost`). */
  readonly lost: (resumeAfter: number, first: number | undefined, last: number) => boolean;
  /** Receives the events, each once, in strictly increasing id order. */
  readonly deliver: (event: StoredSecretEvent) => void;
  /** The resume point is lost: the client must re-read what it watches. Live events follow. */
  readonly resync: () => void;
  /** Awaited after each replayed page, so that a long replay is not queued all at once. */
  readonly drained?: () => Promise<void>;
  /** More live events arrived during the replay than are buffered: the feed is closed, the client resumes. */
  readonly overflow: () => void;
  readonly pageSize?: number;
  readonly maxBuffered?: number;
}

export interface SecretEventFeed {
  /** Stops delivery at once (nothing is delivered after it returns). */
  close(): void;
}

/**
 * One client's stream of a tenant's secret change events: the replay of what it missed, then the
 * live events, with ids strictly increasing across the switch (WHATWG HTML §9.2.4: a client that
 * reconnects resumes after the last id it received, so an id sent early would lose the events
 * below it).
 *
 * It subscribes to the hub first and buffers what arrives, then fixes the replay's end at the
 * log's last committed id U (at or above the hub's position, since ids are handed out in commit
 * order), replays the tenant's events in (resumeAfter, U], and only then delivers the buffered
 * and later live events above U. The buffer holds only events committed during the replay.
 */
export async function openSecretEventFeed(o: SecretEventFeedOptions): Promise<SecretEventFeed> {
  const pageSize = o.pageSize ?? 500;
  const maxBuffered = o.maxBuffered ?? 10_000;
  let closed = false;
  let last = 0;
  let buffer: StoredSecretEvent[] | undefined = [];
  const emit = (e: StoredSecretEvent) => {
    if (closed || e.id <= last) return;
    last = e.id;
    o.deliver(e);
  };
  const unsubscribe = await o.hub.subscribe(o.tenant, (e) => {
    if (closed) return;
    if (!buffer) return emit(e);
    buffer.push(e);
    if (buffer.length > maxBuffered) {
      feed.close();
      o.overflow();
    }
  });
  const feed: SecretEventFeed = {
    close() {
      if (closed) return;
      closed = true;
      buffer = undefined;
      unsubscribe();
    },
  };
  try {
    if (o.resumeAfter !== undefined) {
      const first = await o.store.firstEventId();
      const upTo = await o.store.lastEventId();
      if (o.lost(o.resumeAfter, first, upTo)) {
        if (!closed) o.resync();
      } else {
        for (let after = o.resumeAfter; !closed; ) {
          const page = await o.store.tenantEventsAfter(o.tenant, after, pageSize, upTo);
          for (const e of page) emit(e);
          await o.drained?.();
          if (page.length < pageSize) break;
          after = page[page.length - 1]!.id;
        }
      }
      // Live events at or below U are the replay's (or, after a resync, the re-read's).
      last = Math.max(last, upTo);
    }
  } catch (err) {
    feed.close();
    throw err;
  }
  const pending = buffer ?? [];
  buffer = undefined;
  for (const e of pending) emit(e);
  return feed;
}
