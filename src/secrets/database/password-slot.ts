import { DatabaseError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';

/**
 * A password the engine owns (a connection's root password, a static role's) as its record keeps
 * it: the barrier ciphertext of the password in force and, while a rotation is between writing a
 * new one and recording that the target database took it, the ciphertext of the new one.
 *
 * A rotation calls the target database outside any store transaction (a transaction holds the
 * group-committed store: src/store/group-commit.ts), so the process may die between the
 * `ALTER ROLE` and the commit that records it. The new password is therefore sealed into the
 * record as *pending* (its own column, `pending_sealed_password`, migration 0026) before the
 * `ALTER ROLE`, and made current after it: whichever step the process dies at, the password in
 * force is one of the two the record holds. The pending one is sealed to its own record id
 * ({@link pendingRecordId}), so neither ciphertext can be passed off as the other by moving it
 * to the other column. `DatabaseConfig` and `StaticRole` are both slots.
 */
export interface PasswordSlot {
  /** The password in force; '' for a static role whose first rotation has not completed. */
  readonly sealedPassword: string;
  /** The password a rotation is setting; absent when none is under way. */
  readonly pendingSealedPassword?: string | undefined;
}

/**
 * How long a static role's pending rotation counts as in flight (its `ALTER ROLE` may still be
 * running): another rotation of the role is refused meanwhile, and after it the role is due and
 * rotated anew. Well past the plugin's 5 s connect timeout. (A root rotation needs no such bound:
 * settleRootRotation in connections.ts finishes it by setting the same pending password.)
 */
export const PENDING_ROTATION_MS = 5 * 60_000;

/** The associated data of a pending password: the record's, marked. */
export const pendingRecordId = (recordId: string): string => `${recordId}#pending`;

export const hasPending = (slot: PasswordSlot): boolean => slot.pendingSealedPassword !== undefined;

/**
 * Whether two versions of a record hold the same passwords: a rotation's later steps act only
 * on the record its first step wrote (ciphertexts carry a random nonce, so a rotation begun
 * again never compares equal).
 */
export const sameSlot = (a: PasswordSlot, b: PasswordSlot): boolean => a.sealedPassword === b.sealedPassword && a.pendingSealedPassword === b.pendingSealedPassword;

/** The password in force; throws `database.unavailable` while a first rotation has not completed. */
export function openCurrent(sealer: Sealer, tenant: string, recordId: string, slot: PasswordSlot): string {
  if (slot.sealedPassword === '') throw new DatabaseError('database.unavailable', 'the first password rotation has not completed yet; retry shortly');
  return Buffer.from(sealer.decrypt(tenant, recordId, slot.sealedPassword)).toString('utf8');
}

/** The pending password, if a rotation left one. */
export function openPending(sealer: Sealer, tenant: string, recordId: string, slot: PasswordSlot): string | undefined {
  const pending = slot.pendingSealedPassword;
  return pending === undefined ? undefined : Buffer.from(sealer.decrypt(tenant, pendingRecordId(recordId), pending)).toString('utf8');
}

/** The slot fields with `password` pending beside the current one (spread into the record). */
export function sealPending(sealer: Sealer, tenant: string, recordId: string, password: string): { readonly pendingSealedPassword: string } {
  return { pendingSealedPassword: sealer.encrypt(tenant, pendingRecordId(recordId), Buffer.from(password, 'utf8')) };
}

/** The slot fields holding only `password`, current, any pending one dropped (spread into the record). */
export function sealCurrent(sealer: Sealer, tenant: string, recordId: string, password: string): PasswordSlot {
  return { sealedPassword: sealer.encrypt(tenant, recordId, Buffer.from(password, 'utf8')), pendingSealedPassword: undefined };
}
