import { Counter } from 'prom-client';
import type { SecretsWorkerDeps } from './runtime-leases.js';
import { SecretEventHub } from './secrets/rotation/events.js';
import { RotationScheduler } from './secrets/rotation/scheduler.js';
import { SqlExpiryLock } from './store/lease-store.js';

/**
 * Secret rotation's part of the runtime graph (docs/secrets.md#rotation): the KV rotation
 * scheduler with its singleton lock, alerts and metrics, and the change-event hub behind
 * `GET /v1/secrets/events`. Kept beside runtime.ts so that file stays a list.
 */
export interface RotationRuntime {
  readonly scheduler: RotationScheduler;
  readonly events: SecretEventHub;
  start(everyMs: number): void;
  stop(): Promise<void>;
}

export function createRotationRuntime(deps: SecretsWorkerDeps): RotationRuntime {
  const { logger } = deps;
  const outcomes = new Counter({
    name: 'rampart_secret_rotations_total',
    help: 'KV rotation scheduler outcomes: rotated (generator), due (announced to the application), grace_ended, failed',
    labelNames: ['outcome'] as const,
    registers: [deps.registry],
  });
  const failures = new Counter({ name: 'rampart_secret_rotation_failures_total', help: 'Failed scheduled KV rotations (each is retried with backoff)', registers: [deps.registry] });
  const scheduler = new RotationScheduler({
    store: deps.stores.rotation,
    transact: deps.transact,
    sealer: deps.sealer,
    clock: deps.clock,
    lock: new SqlExpiryLock(deps.database.db, deps.database.dialect, 'rampart.secrets.kv_rotation'),
    auditRow: (e) => deps.audit.rowFor(e),
    paused: deps.sealed,
    onCommitted: (rows) => deps.audit.recordCommitted(rows),
    onOutcome: (outcome) => outcomes.inc({ outcome }),
    onAlert: (policy, err, attempts) => {
      failures.inc();
      logger.error({ err, tenant: policy.tenant, mount: policy.mountPath, path: policy.path, attempts, next_attempt: policy.nextRotationAt }, 'secret rotation failed; will retry with backoff');
    },
  });
  const events = new SecretEventHub({ store: deps.stores.rotation, onError: (err) => logger.error({ err }, 'reading the secret change log failed') });
  return {
    scheduler,
    events,
    start(everyMs) {
      if (everyMs === 0) return;
      scheduler.start(Math.max(everyMs, 1000), (err) => logger.error({ err }, 'secret rotation pass failed'));
    },
    async stop() {
      await scheduler.stop();
      await events.close();
    },
  };
}
