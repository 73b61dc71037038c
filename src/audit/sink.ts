import type { Clock } from '../core/clock.js';
import type { IntegratedEvent, SinkStore } from './sink-store.js';

/**
 * Streaming the audit log to a SIEM.
 *
 * Every configured sink receives every integrated event, in leaf order, at least once. Each sink
 * has a durable cursor (the next leaf index it must receive) that moves only after `deliver`
 * resolved, so a crash between delivery and the cursor update repeats a batch rather than losing
 * it; receivers dedupe by leaf index. The request path never waits for a sink: events are durable
 * in the store before any sink sees them, and a slow or broken sink only falls behind. Of several
 * replicas, one at a time delivers to a given sink (the store's sink lock); the others stand by.
 * User documentation: docs/audit-sinks.md.
 */

/** One event as delivered: its leaf index and the stored payload, verbatim. */
export type DeliveredEvent = IntegratedEvent;

export interface AuditSink {
  /** Names the durable cursor: renaming a sink starts it again from leaf 0. */
  readonly name: string;
  /**
   * Delivers a non-empty batch in leaf order. Resolve only once the receiver has it (fsynced,
   * answered 2xx, written to the socket); reject to have the same batch retried.
   */
  deliver(batch: readonly DeliveredEvent[]): Promise<void>;
  /** Releases files and sockets; an in-flight `deliver` should reject promptly. */
  close(): Promise<void>;
}

/** Runs `fn` after `ms` milliseconds; returns a cancel function. Injected so tests never sleep. */
export type Schedule = (fn: () => void, ms: number) => () => void;

export const realSchedule: Schedule = (fn, ms) => {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/** What the dispatcher knows about one sink, for metrics and health. */
export interface SinkStatus {
  readonly name: string;
  /** The durable cursor as last read or written; undefined before the first read (or in standby). */
  readonly nextLeafIndex: number | undefined;
  /** Integrated events the sink has not received yet, as of the last cycle. */
  readonly lag: number;
  /** Events delivered by this process. */
  readonly delivered: number;
  /** Failed attempts since the last success; 0 when healthy. */
  readonly consecutiveFailures: number;
  readonly lastError: string | undefined;
  /** RFC 3339 time of the last successful delivery by this process. */
  readonly lastDeliveredAt: string | undefined;
  /** True while another replica holds this sink's lock and delivers in our place. */
  readonly standby: boolean;
}

export interface SinkDispatcherOptions {
  readonly store: SinkStore;
  readonly sinks: readonly AuditSink[];
  readonly clock: Clock;
  /** Events per `deliver` call. */
  readonly batchSize?: number;
  /** How often an idle sink looks for new events (`notify` wakes it sooner). */
  readonly pollMs?: number;
  /** First retry delay after a failure; doubles per consecutive failure up to `maxBackoffMs`. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly schedule?: Schedule;
  /** How long `stop` lets an in-flight delivery finish before closing its sink. */
  readonly stopGraceMs?: number;
  /** Called on every failed attempt; the dispatcher itself never throws. */
  readonly onError?: (sink: string, err: unknown) => void;
  /** Called after every cycle with the sink's status (metrics). */
  readonly onStatus?: (status: SinkStatus) => void;
}

interface SinkState {
  readonly sink: AuditSink;
  next: number | undefined;
  lag: number;
  delivered: number;
  failures: number;
  lastError: string | undefined;
  lastDeliveredAt: string | undefined;
  running: Promise<void> | undefined;
  cancelTimer: (() => void) | undefined;
  /** True while waiting out a backoff; `notify` does not cut a backoff short. */
  backingOff: boolean;
  standby: boolean;
  /** `notify` arrived during a cycle: start another one as soon as it ends. */
  rewake: boolean;
}

/** Capped exponential backoff: initial · 2^(failures-1), at most `max`. */
export function backoffDelay(failures: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
}

export class SinkDispatcher {
  readonly #store: SinkStore;
  readonly #clock: Clock;
  readonly #batchSize: number;
  readonly #pollMs: number;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #schedule: Schedule;
  readonly #stopGraceMs: number;
  readonly #onError: (sink: string, err: unknown) => void;
  readonly #onStatus: ((status: SinkStatus) => void) | undefined;
  readonly #states: SinkState[];
  #started = false;
  #stopped = false;

  constructor(options: SinkDispatcherOptions) {
    const names = new Set<string>();
    for (const s of options.sinks) {
      if (names.has(s.name)) throw new Error(`two audit sinks are named "${s.name}"`);
      names.add(s.name);
    }
    this.#store = options.store;
    this.#clock = options.clock;
    this.#batchSize = options.batchSize ?? 500;
    this.#pollMs = options.pollMs ?? 1000;
    this.#initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.#schedule = options.schedule ?? realSchedule;
    this.#stopGraceMs = options.stopGraceMs ?? 5000;
    this.#onError = options.onError ?? (() => undefined);
    this.#onStatus = options.onStatus;
    this.#states = options.sinks.map((sink) => ({
      sink,
      next: undefined,
      lag: 0,
      delivered: 0,
      failures: 0,
      lastError: undefined,
      lastDeliveredAt: undefined,
      running: undefined,
      cancelTimer: undefined,
      backingOff: false,
      standby: false,
      rewake: false,
    }));
  }

  /** Starts every sink's loop; returns at once (delivery happens in the background). */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    for (const s of this.#states) this.#kick(s);
  }

  /** New events were integrated: wakes idle sinks now instead of at their next poll. */
  notify(): void {
    if (!this.#started || this.#stopped) return;
    for (const s of this.#states) {
      if (s.backingOff) continue;
      // A running cycle may have read before these events were integrated: run again after it.
      if (s.running) s.rewake = true;
      else this.#kick(s);
    }
  }

  status(): SinkStatus[] {
    return this.#states.map((s) => this.#statusOf(s));
  }

  /** Resolves when no cycle is running (tests: after firing timers). A stuck sink keeps it pending. */
  async settled(): Promise<void> {
    for (;;) {
      const running = this.#states.map((s) => s.running).filter((p) => p !== undefined);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /**
   * Stops the loops and closes the sinks. An in-flight delivery gets `stopGraceMs` to finish
   * and record its cursor (so a clean restart repeats nothing); after that its sink is closed,
   * which makes it reject, and the batch is delivered again after the next start.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const s of this.#states) {
      s.cancelTimer?.();
      s.cancelTimer = undefined;
    }
    let cancelGrace: (() => void) | undefined;
    const grace = new Promise<void>((resolve) => {
      cancelGrace = this.#schedule(resolve, this.#stopGraceMs);
    });
    await Promise.all(
      this.#states.map(async (s) => {
        if (s.running) await Promise.race([s.running, grace]);
        await s.sink.close().catch((err: unknown) => this.#onError(s.sink.name, err));
        await s.running;
      }),
    );
    cancelGrace?.();
  }

  #kick(s: SinkState): void {
    if (this.#stopped || s.running) return;
    s.cancelTimer?.();
    s.cancelTimer = undefined;
    s.backingOff = false;
    s.rewake = false;
    s.running = this.#cycle(s).finally(() => {
      s.running = undefined;
      if (s.rewake && !s.backingOff) this.#kick(s);
    });
  }

  #wakeAfter(s: SinkState, ms: number): void {
    if (this.#stopped) return;
    s.cancelTimer = this.#schedule(() => {
      s.cancelTimer = undefined;
      this.#kick(s);
    }, ms);
  }

  /**
   * Delivers batches until the sink is caught up, an attempt fails, or another replica holds
   * the sink's lock, then schedules the next cycle. Each batch is read from the durable cursor
   * under the lock, because a replica that held the lock before may have moved it.
   */
  async #cycle(s: SinkState): Promise<void> {
    try {
      for (;;) {
        if (this.#stopped) return;
        const attempt = await this.#store.withSinkLock(s.sink.name, () => this.#deliverOne(s));
        s.standby = !attempt.acquired;
        if (!attempt.acquired || attempt.value < this.#batchSize) break;
      }
      if (s.next !== undefined) s.lag = Math.max(0, (await this.#store.integratedSize()) - s.next);
      this.#onStatus?.(this.#statusOf(s));
      this.#wakeAfter(s, this.#pollMs);
    } catch (err) {
      // stop() closed the sink under an in-flight delivery: expected, and retried after restart.
      if (this.#stopped) return;
      s.failures++;
      s.lastError = err instanceof Error ? err.message : String(err);
      this.#onError(s.sink.name, err);
      if (s.next !== undefined) {
        s.lag = await this.#store.integratedSize().then(
          (size) => Math.max(0, size - s.next!),
          () => s.lag,
        );
      }
      this.#onStatus?.(this.#statusOf(s));
      s.backingOff = true;
      this.#wakeAfter(s, backoffDelay(s.failures, this.#initialBackoffMs, this.#maxBackoffMs));
    }
  }

  /** One batch from the durable cursor; returns how many events it delivered (0: caught up). */
  async #deliverOne(s: SinkState): Promise<number> {
    s.next = await this.#store.cursor(s.sink.name);
    const batch = await this.#store.readIntegrated(s.next, this.#batchSize);
    if (batch.length === 0) return 0;
    checkContiguous(batch, s.next);
    // Pruned before this sink was configured (retention waits for the cursors of configured
    // sinks only): the content is gone, so the sink skips those leaves rather than get ''.
    const live = batch.filter((e) => !e.pruned);
    if (live.length > 0) await s.sink.deliver(live);
    // At-least-once: the cursor moves only after the sink confirmed the whole batch.
    const next = batch.at(-1)!.leafIndex + 1;
    await this.#store.advance(s.sink.name, next);
    s.next = next;
    s.delivered += live.length;
    s.failures = 0;
    s.lastError = undefined;
    s.lastDeliveredAt = this.#clock.now().toISOString();
    return batch.length;
  }

  #statusOf(s: SinkState): SinkStatus {
    return {
      name: s.sink.name,
      nextLeafIndex: s.next,
      lag: s.lag,
      delivered: s.delivered,
      consecutiveFailures: s.failures,
      lastError: s.lastError,
      lastDeliveredAt: s.lastDeliveredAt,
      standby: s.standby,
    };
  }
}

/** Integration assigns leaf indexes without gaps; a gap means the store lost rows, so stop there. */
function checkContiguous(batch: readonly DeliveredEvent[], from: number): void {
  batch.forEach((e, i) => {
    if (e.leafIndex !== from + i) throw new Error(`audit log has a gap: expected leaf ${from + i}, found ${e.leafIndex}`);
  });
}

/** `{"leaf_index":N,"event":<payload>}`, built by concatenation so the payload stays byte-exact. */
export function deliveredJson(e: DeliveredEvent): string {
  return `{"leaf_index":${e.leafIndex},"event":${e.payload}}`;
}
