import type { Clock } from '../../core/clock.js';
import type { ExpiryLock } from '../leases/store.js';
import type { RotationStore } from '../rotation/store.js';
import type { MountStore } from '../store.js';
import { type EngineDeps, settleConnection, settleRootRotation } from './connections.js';
import { hasPending, sameSlot } from './password-slot.js';
import { type StaticRotationStep, applyStaticRotation, beginStaticRotation, failedRotation, finishStaticRotation } from './static-credentials.js';
import type { StaticRole } from './static-role.js';
import type { DatabaseStore } from './store.js';

export interface StaticRotationOptions {
  /** The non-transactional store: the due list. */
  readonly store: DatabaseStore;
  /**
   * Runs one step of a rotation in a store transaction: marking the new password pending, then
   * (after the target took it, outside any transaction) making it current with its change event.
   * A transaction holds the group-committed store (on SQLite its only writer), so none waits on
   * the target database.
   */
  readonly transact: <T>(
    work: (stores: {
      readonly database: DatabaseStore;
      /** With `rotation`: each rotation commits a `database.static.rotated` change event (docs/secrets.md#rotation). */
      readonly mounts?: Pick<MountStore, 'list'>;
      readonly rotation?: Pick<RotationStore, 'appendEvent'>;
    }) => Promise<T>,
  ) => Promise<T>;
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
 * come, a bounded batch at a time, in the crash-safe order of static-credentials.ts (new password
 * pending in the store, then `ALTER ROLE` on the target, then current). A failed rotation is
 * retried with backoff and alerted on; one the process died in is due again once its pending
 * password is `PENDING_ROTATION_MS` (password-slot.ts) old, and is rotated anew.
 *
 * The worker's first pass (the first while the barrier is unsealed) begins by finishing every
 * root rotation a previous process left pending ({@link StaticRotation.settleRootRotations}), so
 * that a connection's stored root password is the one in force before anything uses it.
 */
export class StaticRotation {
  readonly #o: StaticRotationOptions;
  #running: Promise<{ rotated: number; failed: number } | 'busy'> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #swept = false;
  #onError: ((err: unknown) => void) | undefined;

  constructor(options: StaticRotationOptions) {
    this.#o = options;
  }

  tick(): Promise<{ rotated: number; failed: number } | 'busy'> {
    if (this.#o.paused?.()) return Promise.resolve({ rotated: 0, failed: 0 });
    this.#running ??= this.#o.lock
      .run(async () => {
        if (!this.#swept) {
          await this.settleRootRotations();
          this.#swept = true;
        }
        let rotated = 0;
        let failed = 0;
        const due = await this.#o.store.dueStaticRoles(this.#o.clock.now().toISOString(), this.#o.batchSize ?? 100);
        for (const role of due) {
          let step: StaticRotationStep | undefined;
          try {
            // The target is called between two short transactions, never inside one (see the class comment).
            await settleConnection(this.#o.store, this.#o.transact, this.#o.deps, role.tenant, role.mount, role.dbName);
            step = await this.#o.transact(({ database }) => beginStaticRotation(database, this.#o.deps, role));
            await applyStaticRotation(this.#o.transact, this.#o.deps, step);
            const started = step;
            const done = await this.#o.transact(async (stores) => {
              const rotated = await finishStaticRotation(stores.database, this.#o.deps, started);
              // The change event commits with the new password: `watchSecret({ staticRole })` clients re-read it.
              const mount = stores.mounts && (await stores.mounts.list(role.tenant)).find((m) => m.accessor === role.mount);
              if (mount && stores.rotation) {
                await stores.rotation.appendEvent({
                  tenant: role.tenant,
                  kind: 'database.static.rotated',
                  mountPath: mount.path,
                  path: role.name,
                  version: null,
                  occurredAt: rotated.lastRotatedAt,
                  previousReadableUntil: null,
                });
              }
              return rotated;
            });
            rotated++;
            await this.#o.onRotated?.(done);
          } catch (err) {
            failed++;
            await this.#recordFailure(role, step, err);
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

  /**
   * Counts a failed rotation on the record as it now is (keeping a pending password the target
   * may have taken), with the retry backoff; unless another rotation of the role is in flight
   * (its pending password is not this pass's and not yet due), which will record its own outcome.
   */
  async #recordFailure(role: StaticRole, step: StaticRotationStep | undefined, err: unknown): Promise<void> {
    const now = this.#o.clock.now();
    await this.#o.transact(async ({ database }) => {
      const fresh = await database.getStaticRole(role.tenant, role.mount, role.name);
      if (!fresh) return;
      if (hasPending(fresh) && !(step && sameSlot(fresh, step.role)) && Date.parse(fresh.nextRotationAt) > now.getTime()) return;
      await database.putStaticRole(failedRotation(fresh, err, now));
    });
  }

  /**
   * Finishes every root rotation left pending (see settleRootRotation in connections.ts). A
   * connection whose target cannot be reached keeps both passwords, is reported to `start`'s
   * `onError`, and is settled at its next use instead. Returns how many were settled.
   */
  async settleRootRotations(): Promise<number> {
    let settled = 0;
    for (const config of await this.#o.store.pendingRootRotations()) {
      try {
        await settleRootRotation(this.#o.transact, this.#o.deps, config);
        settled++;
      } catch (err) {
        this.#onError?.(err);
      }
    }
    return settled;
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.#onError = onError;
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
