import type { DeliveredEvent, Schedule } from '../../src/audit/sink.js';
import type { IntegratedEvent, SinkStore } from '../../src/audit/sink-store.js';

/**
 * Timers for the dispatcher that fire only when a test says so: backoff is asserted from the
 * requested delays, never waited for.
 */
export class ManualTimers {
  #now = 0;
  #pending: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  /** Every delay the dispatcher asked for, in order. */
  readonly requested: number[] = [];

  readonly schedule: Schedule = (fn, ms) => {
    const timer = { at: this.#now + ms, fn, cancelled: false };
    this.requested.push(ms);
    this.#pending.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };

  get pending(): number {
    return this.#pending.filter((t) => !t.cancelled).length;
  }

  /** Fires every live timer due within `ms` from now (all of them by default), earliest first. */
  fire(ms = Number.POSITIVE_INFINITY): void {
    const due = this.#pending.filter((t) => !t.cancelled && t.at <= this.#now + ms).sort((a, b) => a.at - b.at);
    this.#pending = this.#pending.filter((t) => !due.includes(t) && !t.cancelled);
    for (const t of due) {
      this.#now = Math.max(this.#now, t.at);
      t.fn();
    }
  }
}

/** A SinkStore in memory, with a switch to make `advance` fail (a crash before the cursor write). */
export class MemorySinkStore implements SinkStore {
  readonly events: IntegratedEvent[] = [];
  readonly cursors = new Map<string, number>();
  failAdvances = 0;

  append(count: number): void {
    for (let i = 0; i < count; i++) {
      const leafIndex = this.events.length;
      this.events.push({ leafIndex, payload: JSON.stringify({ seq: leafIndex, note: `event ${leafIndex}` }) });
    }
  }

  async readIntegrated(fromLeafIndex: number, limit: number): Promise<IntegratedEvent[]> {
    return this.events.slice(fromLeafIndex, fromLeafIndex + limit);
  }

  async integratedSize(): Promise<number> {
    return this.events.length;
  }

  async cursor(sinkName: string): Promise<number> {
    return this.cursors.get(sinkName) ?? 0;
  }

  async advance(sinkName: string, nextLeafIndex: number): Promise<void> {
    if (this.failAdvances > 0) {
      this.failAdvances--;
      throw new Error('store unavailable');
    }
    this.cursors.set(sinkName, Math.max(this.cursors.get(sinkName) ?? 0, nextLeafIndex));
  }

  /** Names whose lock another (imaginary) replica holds. */
  readonly lockedElsewhere = new Set<string>();

  async withSinkLock<T>(sinkName: string, work: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }> {
    if (this.lockedElsewhere.has(sinkName)) return { acquired: false };
    return { acquired: true, value: await work() };
  }
}

/**
 * A sink that records every batch it accepted. `failures` says which attempts (1-based) reject;
 * `stuck` makes every delivery hang until `close`.
 */
export class RecordingSink {
  readonly batches: DeliveredEvent[][] = [];
  attempts = 0;
  closed = false;
  #hanging: Array<(err: Error) => void> = [];

  constructor(
    readonly name: string,
    private readonly options: { failures?: (attempt: number) => boolean; stuck?: boolean } = {},
  ) {}

  get received(): number[] {
    return this.batches.flat().map((e) => e.leafIndex);
  }

  async deliver(batch: readonly DeliveredEvent[]): Promise<void> {
    this.attempts++;
    if (this.options.stuck) {
      await new Promise<void>((_resolve, reject) => this.#hanging.push(reject));
    }
    if (this.options.failures?.(this.attempts)) throw new Error(`attempt ${this.attempts} refused`);
    this.batches.push([...batch]);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const reject of this.#hanging) reject(new Error('closed'));
    this.#hanging = [];
  }
}
