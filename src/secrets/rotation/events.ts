import type { RotationStore, StoredSecretEvent } from './store.js';

export type SecretEventListener = (event: StoredSecretEvent) => void;

export interface SecretEventHubOptions {
  /** The non-transactional store: events are read only once committed. */
  readonly store: Pick<RotationStore, 'eventsAfter' | 'lastEventId'>;
  /** How often the event log is read while someone listens. */
  readonly pollMs?: number;
  readonly onError?: (err: unknown) => void;
}

const BATCH = 500;
const MAX_BATCHES_PER_POLL = 20;

/**
 * Fans the secret change log (`secrets_events`) out to the stream subscribers of this process.
 *
 * Unlike the PKI hub, events are read from the shared store, not handed over in memory: every
 * replica sees the changes of every other (KV writes, scheduled rotations run by whichever
 * replica holds the lock), and a client that reconnects can resume from its last event id. The
 * log is read only while at least one subscriber is connected. Ids are handed out in commit order
 * (RotationStore.appendEvent), so reading after the last id seen misses nothing: there are no
 * gaps to wait for, and each event is delivered once, in id order.
 */
export class SecretEventHub {
  readonly #o: SecretEventHubOptions;
  readonly #byTenant = new Map<string, Set<SecretEventListener>>();
  /** The last id read; undefined while nobody listens. */
  #position: number | undefined;
  #ready: Promise<void> | undefined;
  /** Bumped when the last subscriber leaves, so a read in flight for the old position is dropped. */
  #generation = 0;
  #polling: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SecretEventHubOptions) {
    this.#o = options;
  }

  /**
   * Calls `listener`, in id order, with every event of `tenant` above the log position, which is
   * fixed by the time the returned promise resolves (every event at or below it had committed by
   * then: a `lastEventId` read afterwards is at or above it); resolves to the unsubscribe.
   */
  async subscribe(tenant: string, listener: SecretEventListener): Promise<() => void> {
    let set = this.#byTenant.get(tenant);
    if (!set) this.#byTenant.set(tenant, (set = new Set()));
    set.add(listener);
    const unsubscribe = () => {
      set.delete(listener);
      if (set.size === 0 && this.#byTenant.get(tenant) === set) this.#byTenant.delete(tenant);
      if (this.#byTenant.size === 0) this.#stop();
    };
    try {
      await this.#start();
    } catch (err) {
      unsubscribe();
      throw err;
    }
    return unsubscribe;
  }

  get subscribers(): number {
    let n = 0;
    for (const set of this.#byTenant.values()) n += set.size;
    return n;
  }

  /** Reads what was committed since the last read and delivers it. Reads never overlap. */
  poll(): Promise<void> {
    this.#polling ??= this.#read().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async close(): Promise<void> {
    this.#byTenant.clear();
    this.#stop();
    await this.#polling?.catch(() => undefined);
  }

  #start(): Promise<void> {
    if (!this.#ready) {
      const generation = this.#generation;
      const ready = this.#o.store.lastEventId().then((id) => {
        if (this.#generation === generation) this.#position = id;
      });
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
      const pollMs = this.#o.pollMs ?? 250;
      if (pollMs > 0) {
        this.#timer = setInterval(() => this.poll().catch((err) => this.#o.onError?.(err)), pollMs);
        this.#timer.unref();
      }
    }
    return this.#ready;
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#ready = undefined;
    this.#position = undefined;
    this.#generation++;
  }

  async #read(): Promise<void> {
    const generation = this.#generation;
    await this.#ready;
    let cursor = this.#position;
    if (cursor === undefined) return;
    for (let batch = 0; batch < MAX_BATCHES_PER_POLL; batch++) {
      const rows = await this.#o.store.eventsAfter(cursor, BATCH);
      // Everyone unsubscribed meanwhile: a later subscriber starts from a fresh position.
      if (this.#generation !== generation) return;
      for (const event of rows) {
        if (event.id <= cursor) continue;
        cursor = event.id;
        this.#deliver(event);
      }
      this.#position = cursor;
      if (rows.length < BATCH) break;
    }
  }

  #deliver(event: StoredSecretEvent): void {
    // A listener that throws must not keep the event from the others.
    for (const listener of this.#byTenant.get(event.tenant) ?? []) {
      try {
        listener(event);
      } catch {
        continue;
      }
    }
  }
}
