import type { KvKey } from '../kv/store.js';

/**
 * A KV v2 secret's rotation policy and schedule (docs/secrets.md#rotation). Keyed like the secret
 * (tenant, mount accessor, path); `mountPath` is the mount's path when the policy was written, so
 * that change events name the secret as clients address it.
 */
export interface RotationPolicyRecord extends KvKey {
  readonly mountPath: string;
  /** Seconds between rotations. */
  readonly periodSeconds: number;
  /** Seconds the previous version stays readable after a rotation; 0: it is deleted at once. */
  readonly graceSeconds: number;
  /** JSON of the generator spec (src/secrets/rotation/generator.ts); null: an application rotates. */
  readonly generator: string | null;
  /** When the next rotation is due (or the next retry after a failure). */
  readonly nextRotationAt: string;
  readonly lastRotatedAt: string | null;
  /** `due`: the period passed, no generator, and the application has not written a new version yet. */
  readonly state: 'scheduled' | 'due';
  /** Failed rotations since the last success. */
  readonly attempts: number;
  readonly lastError: string | null;
}

/** A version that stays readable after a rotation until `readableUntil`. */
export interface GraceVersionRecord extends KvKey {
  readonly mountPath: string;
  readonly version: number;
  readonly readableUntil: string;
}

export type SecretEventKind = 'kv.written' | 'kv.rotated' | 'kv.rotation_due' | 'database.static.rotated' | 'version.grace_ended';

/**
 * A change notification: what changed and when, never a value. `path` is the secret's path below
 * the mount (a KV key, or a static role's name).
 */
export interface SecretEventRecord {
  readonly tenant: string;
  readonly kind: SecretEventKind;
  readonly mountPath: string;
  readonly path: string;
  /** The KV version concerned (the new one; the ended one for `version.grace_ended`); null for static roles. */
  readonly version: number | null;
  readonly occurredAt: string;
  /** Until when the previous version stays readable (`kv.rotated`, `kv.written` with a grace period). */
  readonly previousReadableUntil: string | null;
}

/** A stored event with its position in the stream (SSE `id`). */
export interface StoredSecretEvent extends SecretEventRecord {
  readonly id: number;
}

/** The schedule a rotation was due at (the due list's snapshot): a failure is recorded only if it still stands. */
export interface RotationFailureExpectation {
  readonly nextRotationAt: string;
  readonly attempts: number;
}

/** What a failed rotation changes in its policy: the retry, nothing else. */
export interface RotationFailure {
  readonly attempts: number;
  readonly nextRotationAt: string;
  readonly lastError: string | null;
}

/** Storage for rotation policies, grace versions and the change-event log. */
export interface RotationStore {
  /** Undefined when the secret has no rotation policy. */
  policy(key: KvKey): Promise<RotationPolicyRecord | undefined>;
  putPolicy(record: RotationPolicyRecord): Promise<void>;
  /**
   * Records a failed rotation: a conditional UPDATE of the attempt count, retry time and error,
   * only while the policy is still `scheduled` at `expected` (never an insert). False when the
   * policy was deleted, rescheduled or rotated meanwhile: that change stands.
   */
  recordFailure(key: KvKey, expected: RotationFailureExpectation, failure: RotationFailure): Promise<boolean>;
  deletePolicy(key: KvKey): Promise<void>;
  /** Policies of every tenant in state `scheduled` whose next rotation is at or before `now`, earliest first. */
  duePolicies(now: string, limit: number): Promise<RotationPolicyRecord[]>;
  putGrace(record: GraceVersionRecord): Promise<void>;
  /** Versions of the secret still in grace at `now`, oldest first. */
  graceVersions(key: KvKey, now: string): Promise<GraceVersionRecord[]>;
  /** Grace versions of every tenant whose grace ended at or before `now`, earliest first. */
  endedGrace(now: string, limit: number): Promise<GraceVersionRecord[]>;
  deleteGrace(key: KvKey, version: number): Promise<void>;
  /**
   * Appends a change event; returns its id. Ids are handed out in commit order (the transaction
   * that takes id N holds the log's head until it ends): once N is visible, no smaller id appears.
   */
  appendEvent(event: SecretEventRecord): Promise<number>;
  /** Events of every tenant after `afterId` (exclusive), in id order. */
  eventsAfter(afterId: number, limit: number): Promise<StoredSecretEvent[]>;
  /** The tenant's events after `afterId` and, if given, up to `upTo` (inclusive), in id order (SSE resume). */
  tenantEventsAfter(tenant: string, afterId: number, limit: number, upTo?: number): Promise<StoredSecretEvent[]>;
  /** The last id handed out and committed (kept when the log is pruned), 0 before the first. */
  lastEventId(): Promise<number>;
  /** The lowest retained event id, undefined when there is none. */
  firstEventId(): Promise<number | undefined>;
  /** Deletes events that occurred before `before`; returns how many. */
  pruneEvents(before: string, limit: number): Promise<number>;
  /** Deletes the policy and grace rows of one secret (metadata delete). */
  deleteSecret(key: KvKey): Promise<void>;
  /** Deletes every policy and grace row of a mount (unmount). */
  purgeMount(tenant: string, mount: string): Promise<void>;
}
