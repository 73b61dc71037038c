import type { Clock } from '../../core/clock.js';
import type { ExpiryLock } from '../leases/store.js';
import type { EngineDeps } from './connections.js';
import { failedRotation, rotate } from './static-credentials.js';
import type { StaticRole } from './static-role.js';
import type { DatabaseStore } from './store.js';

export interface StaticRotationOptions {
  /** The non-transactional store: the due list, and failures after a rolled-back rotation. */
  readonly store: DatabaseStore;
  /**
   * Runs one rotation in a store transaction. The store is taken before the target database, as
   * every request does, so a rotation never holds a database lock while waiting for the store
   * (on SQLite a request holds the store for its whole transaction).
   */
  readonly transact: <T>(work: (stores: { readonly database: DatabaseStore }) => Promise<T>) => Promise<T>;
  readonly deps: EngineDeps;
  readonly clock: Clock;
  /** One rotator at a time across replicas (a PostgreSQL advisory lock of its own). */
  readonly lock: ExpiryLock;
  readonly batchSize?: number;
  /** A rotation succeeded: for the audit log. */
  readonly onRotated?: (role: StaticRole) => Promise<void> | void;
  /** A rotation failed and will be retried with backoff: the alert hook (audit, metric, log). */
  readonly onAlert?: (role: StaticRole, err: unknown) => Promise<void> | void;
  /** While true (the secrets barrier is sealed), passes do nothing. */
  readonly paused?: () => boolean;
}

/**
 * Scheduled rotation of static roles: each pass rotates the roles whose `next_rotation_at` has
 * come, a bounded batch at a time. A failed rotation keeps the old password in force (the
 * database change never commits), is retried with backoff and alerted on.
 */
export class StaticRotation {
  readonly #o: StaticRotationOptions;
  #running: Promise<{ rotated: number; failed: number } | 'busy'> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: StaticRotationOptions) {
    this.#o = options;
  }

  tick(): Promise<{ rotated: number; failed: number } | 'busy'> {
    if (this.#o.paused?.()) return Promise.resolve({ rotated: 0, failed: 0 });
    this.#running ??= this.#o.lock
      .run(async () => {
        let rotated = 0;
        let failed = 0;
        const due = await this.#o.store.dueStaticRoles(this.#o.clock.now().toISOString(), this.#o.batchSize ?? 100);
        for (const role of due) {
          try {
            const done = await this.#o.transact((stores) => rotate(stores.database, this.#o.deps, role));
            rotated++;
            await this.#o.onRotated?.(done);
          } catch (err) {
            failed++;
            await this.#o.store.putStaticRole(failedRotation(role, err, this.#o.clock.now()));
            await this.#o.onAlert?.(role, err);
          }
        }
        return { rotated, failed };
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = setInterval(() => this.tick().catch(onError), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }
}
