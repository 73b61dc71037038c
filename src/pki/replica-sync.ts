/**
 * Keeps one replica's view of the shared PKI state current when other replicas change it: the
 * revocations its event-stream subscribers hear (from the change log, events.ts), and the CA
 * hierarchy, bundle sequence and TLS client-CA list after a rotation. CRL and OCSP answers need
 * nothing from here: their caches check the issuer's CRL revision in the store on every request.
 *
 * Several replicas on PostgreSQL learn of a change at its commit through LISTEN/NOTIFY and, since
 * a notification sent while the listener is reconnecting is lost, through a periodic poll of the
 * log head and bundle sequence as well; either way within a second or two. One process on SQLite
 * needs neither: it delivers its own revocations after they commit.
 */
import type { Clock } from '../core/clock.js';
import type { PkiEventHub, PkiEventStore } from './events.js';
import type { CaHierarchy, CaStores, CaTransact } from './hierarchy.js';

/** What moved, as the change signal tells it; `resync` after a gap in which signals may have been lost. */
export type PkiChange = 'events' | 'bundle' | 'resync';

/** A source of change signals from other replicas (PostgreSQL LISTEN); closed with the sync. */
export interface ChangeSignal {
  close(): Promise<void>;
}

/** Starts a change signal that calls `onChange` for every change another replica commits. */
export type ChangeSignalSource = (onChange: (change: PkiChange) => void) => ChangeSignal;

export interface PkiReplicaSyncOptions {
  readonly hub: PkiEventHub;
  readonly log: PkiEventStore;
  readonly ca: CaHierarchy;
  /** Stores outside any transaction, for reads. */
  readonly stores: CaStores;
  readonly transact: CaTransact;
  readonly clock: Clock;
  /** A background read failed; it is retried at the next signal or poll. */
  readonly onError: (err: unknown, during: 'deliver' | 'refresh') => void;
}

/** Change-log entries read per query; a longer backlog takes several. */
const DELIVERY_BATCH = 500;

export class PkiReplicaSync {
  readonly #o: PkiReplicaSyncOptions;
  /** The last change-log sequence delivered to this replica's subscribers. */
  #cursor: number;
  #announced: number;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #signal: ChangeSignal | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The poll in flight, if any: a slow store must not stack polls, and close waits for it. */
  #polling: Promise<void> | undefined;
  /** Reactions to signals still running, so that close waits for them. */
  readonly #reacting = new Set<Promise<void>>();
  #closed = false;

  private constructor(options: PkiReplicaSyncOptions, cursor: number) {
    this.#o = options;
    this.#cursor = cursor;
    this.#announced = options.ca.sequence;
  }

  /** Starts at the log's head: subscribers hear revocations committed from now on, not history. */
  static async open(options: PkiReplicaSyncOptions): Promise<PkiReplicaSync> {
    return new PkiReplicaSync(options, await options.log.head());
  }

  /** The last change-log sequence this replica delivered. */
  get cursor(): number {
    return this.#cursor;
  }

  /**
   * The CA hierarchy after picking up rotations (made here, by the clock, or by another replica);
   * announces a bundle change to the hub (event streams, the TLS listener) when the sequence
   * moved. `force` reloads from the store at once instead of at most once a second.
   */
  async currentCa(force = false): Promise<CaHierarchy> {
    const { ca } = this.#o;
    await ca.refresh(this.#o.stores, this.#o.transact, force);
    if (ca.sequence !== this.#announced) {
      this.#announced = ca.sequence;
      this.#o.hub.bundleChanged(this.#o.clock.now());
    }
    return ca;
  }

  /**
   * Delivers every committed change-log entry past the cursor to the hub, in sequence order, each
   * once. Call after a revocation commits: the returned promise settles once it was delivered.
   * Calls while a delivery runs coalesce into one more run after it. Never rejects (failures go
   * to `onError`, and the entries wait for the next call).
   */
  deliver(): Promise<void> {
    if (!this.#running) {
      this.#running = this.#drain().finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    }
    this.#next ??= this.#running.then(() => {
      this.#next = undefined;
      return this.deliver();
    });
    return this.#next;
  }

  /**
   * Follows other replicas' changes: at once through `signal`, and every `pollMs` through the
   * store whatever the signal does. Only for several replicas on one PostgreSQL store.
   */
  follow(signal: ChangeSignalSource | undefined, pollMs: number): void {
    this.#signal = signal?.((change) => {
      if (this.#closed) return;
      const reaction = this.#onChange(change).finally(() => this.#reacting.delete(reaction));
      this.#reacting.add(reaction);
    });
    this.#timer = setInterval(() => {
      this.#polling ??= this.#poll().finally(() => {
        this.#polling = undefined;
      });
    }, pollMs);
    this.#timer.unref();
  }

  /** Stops following; settles once nothing started here still reads the store. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#signal?.close();
    await this.#polling;
    await Promise.all(this.#reacting);
    await this.#running;
    await this.#next;
  }

  async #onChange(change: PkiChange): Promise<void> {
    if (change !== 'bundle') await this.deliver();
    if (change !== 'events') await this.#refresh(true);
  }

  async #poll(): Promise<void> {
    // A failed read of the head delivers anyway: the delivery reports the store's error.
    if ((await this.#o.log.head().catch(() => Number.NaN)) !== this.#cursor) await this.deliver();
    let moved = true;
    try {
      moved = (await this.#o.stores.ca.bundleSequence()) !== this.#o.ca.sequence;
    } catch (err) {
      this.#o.onError(err, 'refresh');
    }
    await this.#refresh(moved);
  }

  async #refresh(force: boolean): Promise<void> {
    try {
      await this.currentCa(force);
    } catch (err) {
      this.#o.onError(err, 'refresh');
    }
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const batch = await this.#o.log.after(this.#cursor, DELIVERY_BATCH);
        for (const entry of batch) {
          this.#cursor = entry.sequence;
          this.#o.hub.revoked(entry.tenant, entry.event, entry.sequence);
        }
        if (batch.length < DELIVERY_BATCH) return;
      }
    } catch (err) {
      this.#o.onError(err, 'deliver');
    }
  }
}
