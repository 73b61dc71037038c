import type { KvKey, KvStore } from '../kv/store.js';
import type { RotationStore, SecretEventKind } from './store.js';

/**
 * What KV v2 needs from rotation when it writes a version: the rotation store bound to the same
 * transaction, and the mount's path for the change event.
 */
export interface KvRotation {
  readonly store: RotationStore;
  readonly mountPath: string;
}

/**
 * Records a new version of `key`, in the write's transaction:
 * - every write is a change event (`kv.written`; `kv.rotated` for a secret under a rotation policy);
 * - under a policy, any new version completes a rotation (by the server's generator, or by an
 *   application after `kv.rotation_due`): the schedule restarts from now and the previous version
 *   stays readable for the grace period, after which it is soft-deleted, as `delete_version_after`
 *   does (its `deletion_time` is set now, so it becomes unreadable on time even if the scheduler
 *   is late; the scheduler only announces the end and prunes).
 * Returns until when the previous version stays readable, or null.
 */
export async function recordNewVersion(kv: KvStore, rotation: KvRotation, key: KvKey, previous: number, version: number, now: Date): Promise<string | null> {
  const at = now.toISOString();
  const policy = await rotation.store.policy(key);
  let readableUntil: string | null = null;
  if (policy && previous > 0) {
    const prev = await kv.version(key, previous);
    const live = prev && !prev.destroyed && (prev.deletionTime === null || prev.deletionTime > at);
    if (live) {
      const until = new Date(now.getTime() + policy.graceSeconds * 1000).toISOString();
      if (prev.deletionTime === null || prev.deletionTime > until) await kv.updateVersion(key, previous, { deletionTime: until });
      if (policy.graceSeconds > 0) {
        await rotation.store.putGrace({ ...key, mountPath: rotation.mountPath, version: previous, readableUntil: until });
        readableUntil = until;
      }
    }
  }
  if (policy) {
    await rotation.store.putPolicy({
      ...policy,
      lastRotatedAt: at,
      nextRotationAt: new Date(now.getTime() + policy.periodSeconds * 1000).toISOString(),
      state: 'scheduled',
      attempts: 0,
      lastError: null,
    });
  }
  const kind: SecretEventKind = policy ? 'kv.rotated' : 'kv.written';
  await rotation.store.appendEvent({ tenant: key.tenant, kind, mountPath: rotation.mountPath, path: key.path, version, occurredAt: at, previousReadableUntil: readableUntil });
  return readableUntil;
}

/**
 * The oldest version `max_versions` pruning may keep at `oldest`, lowered so that no version still
 * in its grace period is destroyed: an application may be reading it until the grace ends.
 */
export async function pruneFloor(rotation: KvRotation, key: KvKey, oldest: number, now: Date): Promise<number> {
  const graced = await rotation.store.graceVersions(key, now.toISOString());
  const first = graced[0]?.version;
  return first !== undefined && first < oldest ? first : oldest;
}
