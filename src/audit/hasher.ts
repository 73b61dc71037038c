import { createHmac, randomBytes } from 'node:crypto';
import type { Sealer } from '../core/sealer.js';

/**
 * Vault's audit hashing: a value that may be secret (a secret's path, a credential, a client
 * token) is written to the audit log as `hmac-sha256:<hex>` of the value under a per-log salt.
 * The log never holds the value, yet an operator who has a candidate value can find the events
 * that mention it by hashing it the same way (`POST /v1/audit/hash`).
 */
export class AuditHasher {
  readonly #salt: Buffer;

  constructor(salt: Buffer) {
    if (salt.length < 32) throw new Error('the audit salt must be at least 32 bytes');
    this.#salt = salt;
  }

  static newSalt(): Buffer {
    return randomBytes(32);
  }

  hash(value: string): string {
    return `hmac-sha256:${createHmac('sha256', this.#salt).update(value, 'utf8').digest('hex')}`;
  }
}

/** Storage of the sealed salt: one value per log. */
export interface AuditSaltStore {
  /** Returns undefined before the salt was created. */
  load(): Promise<string | undefined>;
  /** Stores the sealed salt unless one exists; returns the one in force (another replica may have won). */
  create(sealed: string, at: string): Promise<string>;
}

const SALT_RECORD = 'audit-salt';
const SALT_TENANT = 'default';

/** Loads the log's salt, creating it on first start; it is stored only sealed. */
export async function openAuditHasher(store: AuditSaltStore, sealer: Sealer, now: () => Date): Promise<AuditHasher> {
  let sealed = await store.load();
  if (sealed === undefined) {
    sealed = await store.create(sealer.encrypt(SALT_TENANT, SALT_RECORD, AuditHasher.newSalt()), now().toISOString());
  }
  return new AuditHasher(Buffer.from(sealer.decrypt(SALT_TENANT, SALT_RECORD, sealed)));
}
