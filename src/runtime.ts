import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { AUDIT_SCHEMA_VERSION } from './audit/event.js';
import { classifyEvent } from './audit/ocsf.js';
import { Checkpointer } from './audit/checkpointer.js';
import { type AuditHasher, openAuditHasher } from './audit/hasher.js';
import { AuditLog } from './audit/log.js';
import { AuditPruner } from './audit/pruner.js';
import { SubjectVault } from './audit/subjects.js';
import { SinkDispatcher } from './audit/sink.js';
import { createConfiguredSinks } from './audit/sinks/configured.js';
import type { CheckpointStore } from './audit/store.js';
import type { Authorizer } from './authz/authorizer.js';
import { CedarAuthorizer } from './authz/cedar-authorizer.js';
import { CedarWasmEvaluator } from './authz/cedar-wasm-evaluator.js';
import { DecisionService } from './authz/decisions.js';
import { RAMPART_POLICY_STORE } from './authz/entities.js';
import { policyHash, seedPolicies } from './authz/seed-policies.js';
import type { PolicyStore } from './authz/store.js';
import { type Clock, systemClock } from './core/clock.js';
import type { ServerConfig } from './core/config.js';
import { DEFAULT_TENANT } from './core/ids.js';
import type { Logger } from './core/logger.js';
import { defaultTrustDomain } from './identity/tenants.js';
import { createToken } from './identity/tokens.js';
import { chainPem } from './pki/ca.js';
import { type CaHierarchy, ensureCaHierarchy } from './pki/hierarchy.js';
import { Barrier } from './secrets/barrier.js';
import { SecretsSeal } from './secrets/seal.js';
import { AnomalyDetector } from './secrets/anomaly.js';
import { PkiEventHub } from './pki/events.js';
import { PkiReplicaSync } from './pki/replica-sync.js';
import { PgNotificationListener } from './store/pg-notify.js';
import { PKI_NOTIFY_CHANNEL, pkiChangeOf } from './store/pki-event-store.js';
import { Metrics } from './server/metrics.js';
import { ServerCertificate } from './server/server-certificate.js';
import { type Scheduler, TimerScheduler } from './core/scheduler.js';
import { type LeaseRuntime, createLeaseRuntime } from './runtime-leases.js';
import { type RotationRuntime, createRotationRuntime } from './runtime-rotation.js';
import { SqlAuditSaltStore } from './store/audit-salt-store.js';
import { SqlCheckpointStore } from './store/checkpoint-store.js';
import { SqlPruneStore } from './store/prune-store.js';
import { type StoreDatabase, openDatabase } from './store/database.js';
import { SqliteAuditThread } from './store/sqlite-audit-thread.js';
import { SqlSinkStore } from './store/sink-store.js';
import { type Stores, type Transact, bindStores, transactor } from './store/stores.js';

/**
 * The whole object graph of a control-plane process, wired in one place. Capabilities receive
 * their ports here and nowhere else.
 */
export interface Runtime {
  readonly config: ServerConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly database: StoreDatabase;
  readonly stores: Stores;
  readonly transact: Transact;
  readonly audit: AuditLog;
  /** Streams integrated audit events to the configured SIEM sinks; see src/audit/sink.ts. */
  readonly auditSinks: SinkDispatcher;
  /** HMACs values that may be secret before they enter an audit event (`POST /v1/audit/hash`). */
  readonly auditHasher: AuditHasher;
  /** Seals personal data in audit events under per-subject keys, and erases them. */
  readonly subjects: SubjectVault;
  /** Signs audit checkpoints; see src/audit/checkpointer.ts. */
  readonly checkpointer: Checkpointer;
  readonly checkpoints: CheckpointStore;
  /** Prunes old audit payloads when `audit_retention` is set; undefined keeps them forever. */
  readonly auditPruner: AuditPruner | undefined;
  readonly authorizer: Authorizer;
  /** Decisions against application policy stores (the decision API); invalidated with `authorizer`. */
  readonly decisions: DecisionService;
  readonly metrics: Metrics;
  readonly barrier: Barrier;
  /** The secrets barrier (KV, transit, database) and its seal: Shamir after `sys/init` (src/secrets/seal.ts). */
  readonly secretsSeal: SecretsSeal;
  /** Per-principal baselines of secret reads, in memory per replica (src/secrets/anomaly.ts). */
  readonly secretAnomalies: AnomalyDetector;
  readonly ca: CaHierarchy;
  /** Revocation and bundle notifications for `GET /v1/pki/events` (src/pki/events.ts). */
  readonly pkiEvents: PkiEventHub;
  /** Keeps the CA hierarchy and `pkiEvents` current with other replicas' changes (src/pki/replica-sync.ts). */
  readonly pkiSync: PkiReplicaSync;
  /** Leases of dynamic secrets: the manager, the expiry worker, static-role rotation (src/runtime-leases.ts). */
  readonly leases: LeaseRuntime;
  /** KV rotation schedules and the secret change events of `GET /v1/secrets/events` (src/runtime-rotation.ts). */
  readonly rotation: RotationRuntime;
  /** PEM of the trust bundle (the roots), also written to `<data-dir>/ca.pem`. */
  readonly trustBundlePem: string;
  /** The server's TLS certificate (`<data-dir>/tls/`), renewed while running; see src/server/server-certificate.ts. */
  readonly tls: ServerCertificate;
  readonly files: DataFiles;
  close(): Promise<void>;
}

export interface DataFiles {
  readonly trustBundle: string;
  readonly adminToken: string;
  readonly unsealKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly logger: Logger;
  /** Tests: SQLite in memory instead of `<data-dir>/rampart.db`. */
  readonly inMemory?: boolean;
  /** Background audit integration interval; 0 disables it (tests integrate explicitly). */
  readonly integrateEveryMs?: number;
  /** How often the audit pruner runs (when retention is configured); 0 disables the schedule (tests prune explicitly). Default 60 s. */
  readonly pruneEveryMs?: number;
  /** How often the lease expiry worker runs; 0 disables the schedule (tests call `leases.expiry.tick()`). Default 1 s. */
  readonly leaseExpiryEveryMs?: number;
  /** Audit events that may wait for their batch before requests are refused with `audit.pushback`. */
  readonly auditMaxPending?: number;
  /**
   * SQLite file stores: audit entries integrated on the event loop before the audit thread takes
   * over (src/store/sqlite-audit-thread.ts); 0 starts it at once. Default 4,096.
   */
  readonly auditThreadAfter?: number;
  /** Writes that may wait for their group-commit batch (SQLite) before requests are refused with `store.pushback`. */
  readonly storeMaxWaiting?: number;
  /** On PostgreSQL, how often the PKI state is polled behind LISTEN/NOTIFY; default 2 s. */
  readonly pkiPollEveryMs?: number;
  /** Runs the server certificate's renewals; default real timers. Tests pass a ManualScheduler. */
  readonly scheduler?: Scheduler;
}

export function dataFiles(dataDir: string): DataFiles {
  return {
    trustBundle: join(dataDir, 'ca.pem'),
    adminToken: join(dataDir, 'admin-token'),
    unsealKey: join(dataDir, 'unseal.key'),
    serverCert: join(dataDir, 'tls', 'server.pem'),
    serverKey: join(dataDir, 'tls', 'server-key.pem'),
  };
}

export async function startRuntime(config: ServerConfig, options: RuntimeOptions): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const { logger } = options;
  const files = dataFiles(config.dataDir);
  mkdirSync(join(config.dataDir, 'tls'), { recursive: true, mode: 0o700 });

  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, inMemory: options.inMemory ?? false });
  let auditThread: SqliteAuditThread | undefined;
  try {
    const stores = bindStores(database.db, database.dialect);
    // A SQLite file store integrates and checks the audit tree on a thread of its own.
    auditThread =
      database.sqliteFile &&
      new SqliteAuditThread({
        ...database.sqliteFile,
        store: stores.audit,
        ...(options.auditThreadAfter === undefined ? {} : { startAfter: options.auditThreadAfter }),
        onStopped: (err) => logger.warn({ err }, 'audit thread stopped; the audit tree is integrated on the event loop'),
      });
    const metrics = new Metrics({ processMetrics: !options.inMemory });
    const transact = transactor(database, {
      ...(options.storeMaxWaiting === undefined ? {} : { maxWaiting: options.storeMaxWaiting }),
      onBatch: (committed, ok) => metrics.storeBatchSize.observe({ result: ok ? 'ok' : 'error' }, committed),
    });

    const barrier = new Barrier();
    await barrier.unseal(loadUnsealKey(files.unsealKey, await stores.keyring.load()), stores.keyring, clock);
    logger.info({ unseal_key: files.unsealKey }, 'barrier auto-unsealed from key file (development mode)');
    const secretsSeal = await SecretsSeal.open(stores.secretsKeyring, clock, () => loadUnsealKey(files.unsealKey, 'initialized'));
    if (secretsSeal.sealed) logger.warn('secrets barrier initialized with Shamir shares: sealed until enough shares reach PUT /v1/sys/unseal');
    else logger.info({ unseal_key: files.unsealKey }, 'secrets barrier auto-unsealed from key file (development mode; sys/init moves it to Shamir shares)');

    const ca = await withBootstrapLock(database, transact, async (tx) => {
      if (!(await tx.tenants.get(DEFAULT_TENANT))) {
        await tx.tenants.create({ name: DEFAULT_TENANT, trustDomain: defaultTrustDomain(DEFAULT_TENANT), createdAt: clock.now().toISOString() });
        await seedTenantPolicies(tx.policies, clock, DEFAULT_TENANT, 'system');
        await issueAdminToken(tx, clock, files.adminToken);
        await tx.audit.insert([bootstrapEvent(clock)]);
        logger.info({ admin_token_file: files.adminToken }, 'first start: created tenant "default", its policies and the admin token');
      }
      return ensureCaHierarchy(tx.ca, barrier, clock);
    });
    publishAdminToken(files.adminToken);

    const trustBundlePem = chainPem(...ca.roots);
    writeFileSync(files.trustBundle, trustBundlePem, { mode: 0o644 });
    const pkiEvents = new PkiEventHub();
    const tls = await ServerCertificate.open({ ca, clock, logger, files, scheduler: options.scheduler ?? new TimerScheduler(clock), refreshCa: () => ca.refresh(stores, transact) });

    const checkpoints = new SqlCheckpointStore(database.db, database.dialect);
    const checkpointer = await Checkpointer.open({
      checkpoints,
      audit: stores.audit,
      sealer: barrier,
      clock,
      origin: config.auditOrigin,
      onError: (err) => logger.error({ err }, 'audit checkpoint failed'),
      ...(auditThread ? { extend: auditThread.extend } : {}),
    });
    const auditHasher = await openAuditHasher(new SqlAuditSaltStore(database.db), barrier, () => clock.now());
    // Sinks read integrated events from the store on their own schedule: a slow or broken SIEM
    // never holds up a request, it only falls behind (its lag is a metric).
    const auditSinks = new SinkDispatcher({
      store: new SqlSinkStore(database.db, database.dialect, clock),
      sinks: createConfiguredSinks(config.auditSinks),
      clock,
      onError: (sink, err) => {
        metrics.auditSinkFailures.inc({ sink });
        logger.warn({ err, sink }, 'audit sink delivery failed; will retry');
      },
      onStatus: (s) => metrics.auditSinkLag.set({ sink: s.name }, s.lag),
    });
    const autoCheckpoint = options.integrateEveryMs !== 0;
    const audit = new AuditLog({
      store: stores.audit,
      clock,
      ...(options.auditMaxPending === undefined ? {} : { maxPending: options.auditMaxPending }),
      ...(auditThread ? { integrator: auditThread.integrate } : {}),
      onAppend: (count, ok) => metrics.auditAppends.inc({ result: ok ? 'ok' : 'error' }, count),
      // Tests integrate and checkpoint explicitly; servers sign after integration (≤ 1 per second)
      // and wake the sinks, so SIEMs see an event within a poll of its integration.
      ...(autoCheckpoint
        ? {
            onIntegrated: () => {
              checkpointer.notify();
              auditSinks.notify();
            },
          }
        : {}),
    });
    if (options.integrateEveryMs !== 0) {
      audit.startIntegrator(options.integrateEveryMs ?? 250, (err) => logger.error({ err }, 'audit integration failed'));
    }
    const sinkNames = config.auditSinks.map((s) => s.name);
    const auditPruner =
      config.auditRetentionMs === undefined
        ? undefined
        : new AuditPruner({
            store: new SqlPruneStore(database.db, database.dialect),
            clock,
            retentionMs: config.auditRetentionMs,
            sinkNames,
            onError: (err) => logger.error({ err }, 'audit pruning failed; will retry'),
            onPruned: (count) => logger.info({ pruned: count }, 'audit retention pruned event payloads'),
          });
    const evaluator = new CedarWasmEvaluator();
    const decisions = new DecisionService({ policies: stores.policies, entities: stores.entities, evaluator, clock });
    const authorizer = new CedarAuthorizer({ policies: stores.policies, evaluator, clock, onInvalidate: (tenant) => decisions.invalidate(tenant) });

    const pkiSync = await PkiReplicaSync.open({
      hub: pkiEvents,
      log: stores.pkiEvents,
      ca,
      stores,
      transact,
      clock,
      onError: (err, during) => logger.warn({ err, during }, 'PKI replica sync failed; will retry'),
    });

    const leases = createLeaseRuntime({ database, stores, transact, sealer: secretsSeal.barrier, sealed: () => secretsSeal.sealed, clock, audit, registry: metrics.registry, logger });
    const rotation = createRotationRuntime({ database, stores, transact, sealer: secretsSeal.barrier, sealed: () => secretsSeal.sealed, clock, audit, registry: metrics.registry, logger });

    // Last, so that nothing after it can fail and leave the loops running over a closed store.
    auditSinks.start();
    leases.start(options.leaseExpiryEveryMs ?? 1000);
    rotation.start(options.leaseExpiryEveryMs ?? 1000);
    if (database.dialect === 'postgres' && config.databaseUrl) {
      const url = config.databaseUrl;
      pkiSync.follow((onChange) => {
        const listener = new PgNotificationListener(url, PKI_NOTIFY_CHANNEL, {
          onNotification: (payload) => onChange(pkiChangeOf(payload)),
          onListening: () => onChange('resync'),
          onError: (err) => logger.warn({ err }, 'PKI change listener lost its PostgreSQL connection; reconnecting'),
        });
        listener.start();
        return listener;
      }, options.pkiPollEveryMs ?? 2000);
    }
    if (auditPruner && options.pruneEveryMs !== 0) auditPruner.start(options.pruneEveryMs ?? 60_000);
    tls.start((watcher) => pkiEvents.watchBundle(watcher));
    return {
      config,
      clock,
      logger,
      database,
      stores,
      transact,
      audit,
      auditSinks,
      auditHasher,
      subjects: new SubjectVault(barrier, auditHasher),
      checkpointer,
      checkpoints,
      auditPruner,
      authorizer,
      decisions,
      metrics,
      barrier,
      secretsSeal,
      secretAnomalies: new AnomalyDetector({ clock }),
      ca,
      pkiEvents,
      pkiSync,
      leases,
      rotation,
      trustBundlePem,
      tls,
      files,
      async close() {
        await pkiSync.close();
        await tls.stop();
        await leases.stop();
        await rotation.stop();
        await auditPruner?.stop();
        await auditSinks.stop();
        await audit.close();
        await checkpointer.close({ final: autoCheckpoint });
        await auditThread?.close();
        barrier.seal();
        secretsSeal.seal();
        await database.close();
      },
    };
  } catch (err) {
    await auditThread?.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw err;
  }
}

/** Seeds a new tenant's `rampart` policy store with version 1 (see seed-policies.ts). */
export async function seedTenantPolicies(policies: PolicyStore, clock: Clock, tenant: string, author: string): Promise<void> {
  const files = seedPolicies(tenant);
  await policies.insert({
    tenant,
    store: RAMPART_POLICY_STORE,
    version: 1,
    hash: policyHash(files, null),
    policies: files,
    schema: null,
    status: 'active',
    author,
    message: 'initial policy set: tenant admins may do everything, everyone else nothing',
    createdAt: clock.now().toISOString(),
  });
}

/**
 * First-start initialization must happen once even when several replicas start together on one
 * PostgreSQL database: a transaction-scoped advisory lock serializes them. SQLite has one writer.
 */
async function withBootstrapLock<T>(database: StoreDatabase, transact: Transact, work: (tx: Stores) => Promise<T>): Promise<T> {
  if (database.dialect !== 'postgres') return transact(work);
  return database.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('rampart.bootstrap'))`.execute(trx);
    return work(bindStores(trx, database.dialect));
  });
}

function loadUnsealKey(path: string, existingKeyring: string | undefined): Buffer {
  if (existsSync(path)) {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${path} does not hold a base64 32-byte unseal key`);
    return key;
  }
  if (existingKeyring !== undefined) {
    throw new Error(`the store is already initialized but ${path} is missing: copy the unseal key file from the first server`);
  }
  const key = randomBytes(32);
  writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

/**
 * The admin token is written to a temporary file inside the bootstrap transaction and moved into
 * place after it commits, so a failed bootstrap never leaves a token that does not exist.
 */
async function issueAdminToken(tx: Stores, clock: Clock, path: string): Promise<void> {
  const { token } = await createToken(tx.tokens, clock, {
    tenant: DEFAULT_TENANT,
    policies: ['admin'],
    displayName: 'bootstrap-admin',
    ttlMs: undefined,
    createdBy: null,
  });
  writeFileSync(`${path}.tmp`, `${token}\n`, { mode: 0o600 });
}

function publishAdminToken(path: string): void {
  if (existsSync(`${path}.tmp`)) {
    renameSync(`${path}.tmp`, path);
    chmodSync(path, 0o600);
  }
}

function bootstrapEvent(clock: Clock) {
  const time = clock.now().toISOString();
  return {
    tenant: DEFAULT_TENANT,
    recordedAt: time,
    payload: JSON.stringify({
      schema_version: AUDIT_SCHEMA_VERSION,
      ocsf: classifyEvent(null, 'success'),
      time,
      tenant: DEFAULT_TENANT,
      request_id: 'bootstrap',
      source_ip: '',
      principal: null,
      action: 'system:bootstrap',
      resource: { type: 'Rampart::Tenant', id: DEFAULT_TENANT },
      outcome: 'success',
      authorization: null,
      error_code: null,
      http: null,
      details: { created: ['tenant:default', 'policy:rampart@1', 'token:bootstrap-admin', 'ca:root', 'ca:intermediate'] },
    }),
  };
}
