import { Counter, type Registry } from 'prom-client';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from './audit/event.js';
import type { AuditLog } from './audit/log.js';
import type { Clock } from './core/clock.js';
import type { Logger } from './core/logger.js';
import type { Sealer } from './core/sealer.js';
import { DATABASE_ENGINE, DatabaseLeaseBackend } from './secrets/database/dynamic-credentials.js';
import { databasePlugin } from './secrets/database/engine.js';
import type { StaticRole } from './secrets/database/static-role.js';
import { StaticRotation } from './secrets/database/static-rotation.js';
import { LeaseExpiry } from './secrets/leases/expiry.js';
import { LeaseManager } from './secrets/leases/lease-manager.js';
import type { StoreDatabase } from './store/database.js';
import { SqlExpiryLock } from './store/lease-store.js';
import type { Stores, Transact } from './store/stores.js';

/**
 * The lease manager's part of the runtime graph: the manager with the database engine's backend,
 * the expiry worker and the static-role rotator, their singleton locks, their alerts (metric,
 * audit event, log line) and their schedules. Kept beside runtime.ts so that file stays a list.
 */
export interface LeaseRuntime {
  readonly manager: LeaseManager<Stores>;
  readonly expiry: LeaseExpiry;
  readonly staticRotation: StaticRotation;
  start(expiryEveryMs: number): void;
  stop(): Promise<void>;
}

/** What a background secrets worker (lease expiry, static and KV rotation) is built from. */
export interface SecretsWorkerDeps {
  readonly database: StoreDatabase;
  readonly stores: Stores;
  readonly transact: Transact;
  readonly sealer: Sealer;
  /** True while the barrier is sealed: workers pause. */
  readonly sealed: () => boolean;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly registry: Registry;
  readonly logger: Logger;
}

export function createLeaseRuntime(deps: SecretsWorkerDeps): LeaseRuntime {
  const { database, stores, clock, logger } = deps;
  const revokeFailures = new Counter({
    name: 'rampart_lease_revoke_failures_total',
    help: 'Failed lease revocations (each is retried with backoff), by engine',
    labelNames: ['engine'] as const,
    registers: [deps.registry],
  });
  const revoked = new Counter({ name: 'rampart_leases_expired_total', help: 'Lease expiry revocations and failures recorded by the expiry worker', registers: [deps.registry] });
  const rotationFailures = new Counter({ name: 'rampart_static_role_rotation_failures_total', help: 'Failed scheduled static-role rotations (each is retried with backoff)', registers: [deps.registry] });

  const manager = new LeaseManager<Stores>({ sealer: deps.sealer, clock, stores });
  const engineDeps = { plugin: databasePlugin, sealer: deps.sealer, clock };
  manager.registerBackend(DATABASE_ENGINE, new DatabaseLeaseBackend(engineDeps));

  const expiry = new LeaseExpiry({
    store: stores.leases,
    transact: deps.transact,
    lock: new SqlExpiryLock(database.db, database.dialect),
    manager,
    clock,
    auditRow: (e) => deps.audit.rowFor(e),
    paused: deps.sealed,
    onRevoked: (count) => {
      revoked.inc(count);
      deps.audit.recordCommitted(count);
    },
    onAlert: (lease, err, attempts) => {
      revokeFailures.inc({ engine: lease.engine });
      logger.error({ err, lease_id: lease.leaseId, tenant: lease.tenant, attempts }, 'lease revocation failed; will retry with backoff');
    },
    onError: (err) => logger.error({ err }, 'lease expiry pass failed'),
  });

  const rotationEvent = (role: StaticRole, outcome: 'success' | 'failed'): AuditEvent => ({
    schema_version: AUDIT_SCHEMA_VERSION,
    time: clock.now().toISOString(),
    tenant: role.tenant,
    request_id: 'static-role-rotation',
    source_ip: '',
    principal: null,
    action: 'secrets:static-role-rotate',
    resource: { type: 'Rampart::StaticRole', id: `${role.mount}/${role.name}` },
    outcome,
    authorization: null,
    error_code: outcome === 'success' ? null : 'database.statement_failed',
    http: null,
    details: { static_role: role.name, username: role.username, attempts: role.rotationAttempts + (outcome === 'success' ? 0 : 1) },
  });
  const staticRotation = new StaticRotation({
    store: stores.database,
    transact: deps.transact,
    deps: engineDeps,
    clock,
    lock: new SqlExpiryLock(database.db, database.dialect, 'rampart.secrets.static_rotation'),
    paused: deps.sealed,
    onRotated: (role) => deps.audit.append(rotationEvent(role, 'success')),
    onAlert: async (role, err) => {
      rotationFailures.inc();
      logger.error({ err, static_role: role.name, tenant: role.tenant }, 'static role rotation failed; will retry with backoff');
      await deps.audit.append(rotationEvent(role, 'failed'));
    },
  });

  return {
    manager,
    expiry,
    staticRotation,
    start(everyMs) {
      if (everyMs === 0) return;
      expiry.start(everyMs);
      staticRotation.start(Math.max(everyMs, 5_000), (err) => logger.error({ err }, 'static role rotation pass failed'));
    },
    async stop() {
      await expiry.stop();
      await staticRotation.stop();
      await databasePlugin.close();
    },
  };
}
