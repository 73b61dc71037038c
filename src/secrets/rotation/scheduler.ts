import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from '../../audit/event.js';
import type { Clock } from '../../core/clock.js';
import { isRampartError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import { pruneExcessVersions, readSecret, writeSecret, type KvContext } from '../kv/secrets.js';
import type { KvKey, KvStore } from '../kv/store.js';
import { revokeRetryDelayMs } from '../leases/lease.js';
import type { ExpiryLock, LeaseAuditRows } from '../leases/store.js';
import { generateValues, type GeneratorSpec } from './generator.js';
import type { GraceVersionRecord, RotationPolicyRecord, RotationStore } from './store.js';

/** What a rotation pass writes in one transaction: the secret, the schedule, the event, the audit row. */
export interface RotationStores {
  readonly kv: KvStore;
  readonly rotation: RotationStore;
  readonly audit: LeaseAuditRows;
}

export interface RotationSchedulerOptions {
  /** The non-transactional store: the due lists, and failures after a rolled-back rotation. */
  readonly store: RotationStore;
  readonly transact: <T>(work: (stores: RotationStores) => Promise<T>) => Promise<T>;
  readonly sealer: Sealer;
  readonly clock: Clock;
  /** One scheduler at a time across replicas (a PostgreSQL advisory lock of its own). */
  readonly lock: ExpiryLock;
  /** The stored form of an audit event (the audit log's `rowFor`). */
  readonly auditRow: (event: AuditEvent) => { tenant: string; recordedAt: string; payload: string };
  /** Rotations (and grace ends) per batch; a pass takes at most `maxBatchesPerPass` of each. */
  readonly batchSize?: number;
  readonly maxBatchesPerPass?: number;
  /** How long change events stay in the log for clients that resume (`Last-Event-ID`). */
  readonly eventRetentionMs?: number;
  /** After each committed batch: audit rows appended. */
  readonly onCommitted?: (auditRows: number) => void;
  /** A rotation, an announced `rotation_due`, or a grace end happened: for the metric. */
  readonly onOutcome?: (outcome: 'rotated' | 'due' | 'grace_ended' | 'failed') => void;
  /**
   * A rotation failed: the alert hook (log line, metric). Its audit event is already written.
   * `retrying`: a retry is scheduled with backoff; false when the policy changed or went away
   * meanwhile, whose change (or deletion) stands.
   */
  readonly onAlert?: (policy: RotationPolicyRecord, err: unknown, attempts: number, retrying: boolean) => void;
  /** While true (the secrets barrier is sealed), passes do nothing: no secret can be opened. */
  readonly paused?: () => boolean;
}

export interface RotationPass {
  readonly rotated: number;
  readonly due: number;
  readonly graceEnded: number;
  readonly failed: number;
  readonly stopped: 'done' | 'cap' | 'busy' | 'paused';
}

const DEFAULT_EVENT_RETENTION_MS = 3_600_000;

/**
 * Runs KV rotation schedules (docs/secrets.md#rotation): at the end of a secret's period the
 * server writes a new version from the secret's generator, or, without one, marks the secret
 * `due` and announces `kv.rotation_due` so that an application writes it. It also announces the
 * end of grace periods, prunes what `max_versions` no longer keeps, and trims the event log.
 *
 * Every rotation commits in one transaction with its change event and its audit event. A failed
 * one is never dropped: the policy keeps an attempt count and a retry time (10 s doubling up to
 * 1 h, as lease revocations), and each failure is an audit event (outcome `failed`,
 * `secrets.rotation_failed`) plus `onAlert` for the log and the metric.
 */
export class RotationScheduler {
  readonly #o: RotationSchedulerOptions;
  readonly #batchSize: number;
  readonly #maxBatches: number;
  #running: Promise<RotationPass> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RotationSchedulerOptions) {
    this.#o = options;
    this.#batchSize = options.batchSize ?? 100;
    this.#maxBatches = options.maxBatchesPerPass ?? 10;
  }

  /** One pass over what is due now. Passes never overlap within a process. */
  tick(): Promise<RotationPass> {
    this.#running ??= this.#pass().finally(() => {
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

  async #pass(): Promise<RotationPass> {
    if (this.#o.paused?.()) return { rotated: 0, due: 0, graceEnded: 0, failed: 0, stopped: 'paused' };
    const outcome = await this.#o.lock.run(async () => {
      const totals = { rotated: 0, due: 0, graceEnded: 0, failed: 0 };
      let capped = true;
      for (let batch = 0; batch < this.#maxBatches; batch++) {
        const policies = await this.#o.store.duePolicies(this.#o.clock.now().toISOString(), this.#batchSize);
        for (const policy of policies) {
          const result = await this.#rotate(policy);
          if (result !== 'skipped') totals[result]++;
        }
        if (policies.length < this.#batchSize) {
          capped = false;
          break;
        }
        await yieldToEventLoop();
      }
      for (let batch = 0; batch < this.#maxBatches; batch++) {
        const ended = await this.#o.store.endedGrace(this.#o.clock.now().toISOString(), this.#batchSize);
        if (ended.length > 0) totals.graceEnded += await this.#endGrace(ended);
        if (ended.length < this.#batchSize) break;
        capped = true;
        await yieldToEventLoop();
      }
      const retention = this.#o.eventRetentionMs ?? DEFAULT_EVENT_RETENTION_MS;
      await this.#o.store.pruneEvents(new Date(this.#o.clock.now().getTime() - retention).toISOString(), this.#batchSize * 10);
      return { ...totals, stopped: capped ? ('cap' as const) : ('done' as const) };
    });
    return outcome === 'busy' ? { rotated: 0, due: 0, graceEnded: 0, failed: 0, stopped: 'busy' } : outcome;
  }

  async #rotate(policy: RotationPolicyRecord): Promise<'rotated' | 'due' | 'failed' | 'skipped'> {
    const key: KvKey = { tenant: policy.tenant, mount: policy.mount, path: policy.path };
    try {
      const result = await this.#o.transact(async (s) => {
        const now = this.#o.clock.now();
        const at = now.toISOString();
        // Serialize with writers of the secret, then look again: an application may have written
        // the new version (which restarts the schedule) since the due list was read.
        await s.kv.lockMetadata(key, at);
        const fresh = await s.rotation.policy(key);
        if (!fresh || fresh.state !== 'scheduled' || fresh.nextRotationAt > at) return 'skipped' as const;
        if (fresh.generator === null) {
          await s.rotation.putPolicy({ ...fresh, state: 'due', attempts: 0, lastError: null });
          const current = await s.kv.metadata(key);
          await s.rotation.appendEvent({ tenant: key.tenant, kind: 'kv.rotation_due', mountPath: fresh.mountPath, path: key.path, version: current?.currentVersion ?? 0, occurredAt: at, previousReadableUntil: null });
          await s.audit.insert([this.#o.auditRow(this.#event(fresh, 'success', null, { due: true, version: current?.currentVersion ?? 0 }))]);
          return 'due' as const;
        }
        const ctx: KvContext = { store: s.kv, sealer: this.#o.sealer, clock: this.#o.clock, rotation: { store: s.rotation, mountPath: fresh.mountPath } };
        const current = await readSecret(ctx, key, undefined);
        const spec = JSON.parse(fresh.generator) as GeneratorSpec;
        const meta = await writeSecret(ctx, key, { ...(current?.data ?? {}), ...generateValues(spec) }, (await s.kv.metadata(key))?.currentVersion ?? 0);
        await s.audit.insert([this.#o.auditRow(this.#event(fresh, 'success', null, { version: meta.version, generated_keys: Object.keys(spec.keys) }))]);
        return 'rotated' as const;
      });
      if (result === 'skipped') return result;
      this.#o.onCommitted?.(1);
      this.#o.onOutcome?.(result);
      return result;
    } catch (err) {
      const attempts = policy.attempts + 1;
      const now = this.#o.clock.now();
      const key: KvKey = { tenant: policy.tenant, mount: policy.mount, path: policy.path };
      // `policy` is the due list's snapshot: only the retry is recorded, and only if the schedule it
      // was due at still stands. A policy changed, rotated or deleted meanwhile keeps that change.
      const retrying = await this.#o.transact(async (s) => {
        const recorded = await s.rotation.recordFailure(
          key,
          { nextRotationAt: policy.nextRotationAt, attempts: policy.attempts },
          { attempts, nextRotationAt: new Date(now.getTime() + revokeRetryDelayMs(attempts)).toISOString(), lastError: describe(err) },
        );
        const cause = isRampartError(err) ? err.code : 'internal';
        await s.audit.insert([this.#o.auditRow(this.#event(policy, 'failed', 'secrets.rotation_failed', { attempts, cause, retry_scheduled: recorded }))]);
        return recorded;
      });
      this.#o.onCommitted?.(1);
      this.#o.onOutcome?.('failed');
      this.#o.onAlert?.(policy, err, attempts, retrying);
      return 'failed';
    }
  }

  async #endGrace(ended: readonly GraceVersionRecord[]): Promise<number> {
    await this.#o.transact(async (s) => {
      const at = this.#o.clock.now().toISOString();
      for (const g of ended) {
        const key: KvKey = { tenant: g.tenant, mount: g.mount, path: g.path };
        await s.rotation.deleteGrace(key, g.version);
        await s.rotation.appendEvent({ tenant: g.tenant, kind: 'version.grace_ended', mountPath: g.mountPath, path: g.path, version: g.version, occurredAt: at, previousReadableUntil: null });
        await pruneExcessVersions({ store: s.kv, sealer: this.#o.sealer, clock: this.#o.clock, rotation: { store: s.rotation, mountPath: g.mountPath } }, key);
      }
      await s.audit.insert(ended.map((g) => this.#o.auditRow(this.#graceEvent(g))));
    });
    this.#o.onCommitted?.(ended.length);
    for (let i = 0; i < ended.length; i++) this.#o.onOutcome?.('grace_ended');
    return ended.length;
  }

  #event(policy: RotationPolicyRecord, outcome: 'success' | 'failed', errorCode: string | null, details: Readonly<Record<string, string | number | boolean | readonly string[]>>): AuditEvent {
    return {
      schema_version: AUDIT_SCHEMA_VERSION,
      time: this.#o.clock.now().toISOString(),
      tenant: policy.tenant,
      request_id: 'secret-rotation',
      source_ip: '',
      principal: null,
      action: 'secrets:kv-rotate',
      resource: { type: 'Rampart::VaultPath', id: `${policy.mountPath}/data/${policy.path}` },
      outcome,
      authorization: null,
      error_code: errorCode,
      http: null,
      details: { mount: policy.mountPath, path: policy.path, ...details },
    };
  }

  #graceEvent(g: GraceVersionRecord): AuditEvent {
    return {
      schema_version: AUDIT_SCHEMA_VERSION,
      time: this.#o.clock.now().toISOString(),
      tenant: g.tenant,
      request_id: 'secret-rotation',
      source_ip: '',
      principal: null,
      action: 'secrets:kv-grace-end',
      resource: { type: 'Rampart::VaultPath', id: `${g.mountPath}/data/${g.path}` },
      outcome: 'success',
      authorization: null,
      error_code: null,
      http: null,
      details: { mount: g.mountPath, path: g.path, version: g.version, readable_until: g.readableUntil },
    };
  }
}

/** A failure's message for the policy's `rotation_last_error`: codes and messages only, never values. */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (isRampartError(err) ? `${err.code}: ${message}` : message).slice(0, 500);
}
