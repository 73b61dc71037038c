import { randomBytes } from 'node:crypto';
import { aeadOpen, aeadSeal } from '../core/aead.js';
import { randomId } from '../core/ids.js';
import type { Sealer } from '../core/sealer.js';
import type { AuditHasher } from './hasher.js';

/**
 * Crypto-shredding for personal data in an append-only log (GDPR Art. 17).
 *
 * Personal data of a data subject is never written to an event in clear: it is encrypted under a
 * key of that subject, and the event carries only the ciphertext, the key's id and the subject's
 * salted HMAC (so the log does not even hold the identifier). Erasing the subject destroys its
 * keys; the event bytes, and so every leaf hash, tree root, checkpoint and proof, stay exactly as
 * they were, while the data becomes unreadable for everyone. The key table is keyed by the HMAC
 * too, so after erasure nothing in the store names the subject.
 */
export interface SealedSubject {
  /** `hmac-sha256:<hex>` of the subject id under the audit salt. */
  readonly ref: string;
  readonly key_id: string;
  /** AES-256-GCM of the JSON data, bound to tenant, ref and key id. */
  readonly data: string;
}

/** What a reader sees of a sealed subject section. */
export type SubjectView =
  | { readonly ref: string; readonly data: Record<string, unknown> }
  | { readonly ref: string; readonly erased: true };

export interface SubjectKeyStore {
  /** The active (unerased) key of the subject, as barrier ciphertext, with its id. */
  active(tenant: string, ref: string): Promise<{ keyId: string; sealedKey: string } | undefined>;
  /** The key with this id; `null` once erased, undefined if it never existed. */
  get(tenant: string, keyId: string): Promise<string | null | undefined>;
  insert(tenant: string, ref: string, keyId: string, sealedKey: string, at: string): Promise<void>;
  /** Destroys every key of the subject; returns how many were destroyed. */
  erase(tenant: string, ref: string, at: string): Promise<number>;
}

const KEY_TENANT_RECORD = (keyId: string) => `audit-subject-key/${keyId}`;
const aad = (tenant: string, ref: string, keyId: string) => `${tenant}\u0000${ref}\u0000${keyId}`;

export class SubjectVault {
  constructor(
    private readonly sealer: Sealer,
    private readonly hasher: AuditHasher,
  ) {}

  refOf(subjectId: string): string {
    return this.hasher.hash(`subject:${subjectId}`);
  }

  /** Seals `data` under the subject's key, creating the key on first use (in the caller's transaction). */
  async seal(store: SubjectKeyStore, tenant: string, subjectId: string, data: Record<string, unknown>, at: string): Promise<SealedSubject> {
    const ref = this.refOf(subjectId);
    let active = await store.active(tenant, ref);
    if (!active) {
      const keyId = randomId();
      const sealedKey = this.sealer.encrypt(tenant, KEY_TENANT_RECORD(keyId), randomBytes(32));
      await store.insert(tenant, ref, keyId, sealedKey, at);
      active = { keyId, sealedKey };
    }
    const key = this.sealer.decrypt(tenant, KEY_TENANT_RECORD(active.keyId), active.sealedKey);
    return { ref, key_id: active.keyId, data: aeadSeal(key, Buffer.from(JSON.stringify(data), 'utf8'), aad(tenant, ref, active.keyId)) };
  }

  /** Opens a sealed section for a reader; an erased (or never created) key shows as erased. */
  async open(store: SubjectKeyStore, tenant: string, sealed: SealedSubject): Promise<SubjectView> {
    const sealedKey = await store.get(tenant, sealed.key_id);
    if (!sealedKey) return { ref: sealed.ref, erased: true };
    const key = this.sealer.decrypt(tenant, KEY_TENANT_RECORD(sealed.key_id), sealedKey);
    const plain = aeadOpen(key, sealed.data, aad(tenant, sealed.ref, sealed.key_id));
    return { ref: sealed.ref, data: JSON.parse(plain.toString('utf8')) as Record<string, unknown> };
  }

  erase(store: SubjectKeyStore, tenant: string, subjectId: string, at: string): Promise<number> {
    return store.erase(tenant, this.refOf(subjectId), at);
  }
}
