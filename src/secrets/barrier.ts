import { randomBytes } from 'node:crypto';
import { aeadOpen, aeadSeal } from '../core/aead.js';
import type { Clock } from '../core/clock.js';
import { SecretsError } from '../core/errors.js';
import type { KeyringStore, SecretsKeyringStore } from './store.js';

/**
 * The barrier: every piece of secret material (CA private keys today; KV values, transit keys and
 * database credentials with the secrets engines) is stored only as AES-256-GCM ciphertext under
 * the active keyring key, with a fresh 96-bit nonce per write and the record's tenant and id as
 * associated data, so a ciphertext moved to another row or tenant fails to decrypt.
 *
 * The keyring itself is encrypted under the root key. Here the root key comes from an auto-unseal
 * key file; Shamir-split unseal keys replace that source without changing the record format.
 *
 * Ciphertext format: `rb1:<term>:<base64(nonce ‖ ciphertext ‖ tag)>`.
 */
interface Keyring {
  readonly activeTerm: number;
  readonly keys: ReadonlyArray<{ readonly term: number; readonly key: string; readonly createdAt: string }>;
}

const KEYRING_AAD = 'rampart/barrier/keyring';

export class Barrier {
  #keys: Map<number, Buffer> | undefined;
  #activeTerm = 0;
  #installed = new Map<number, string>();
  /** Kept while unsealed, to rewrap the keyring after a rotation (Vault keeps it likewise). */
  #rootKey: Buffer | undefined;

  get sealed(): boolean {
    return this.#keys === undefined;
  }

  /**
   * Unseals with the root key: loads the keyring, or creates it on first use. A keyring that
   * does not decrypt under this root key is refused, never replaced.
   */
  async unseal(rootKey: Buffer, store: KeyringStore, clock: Clock): Promise<void> {
    if (rootKey.length !== 32) throw new SecretsError('secrets.decrypt_failed', 'the root key must be 32 bytes');
    let blob = await store.load();
    if (blob === undefined) {
      const keyring: Keyring = {
        activeTerm: 1,
        keys: [{ term: 1, key: randomBytes(32).toString('base64'), createdAt: clock.now().toISOString() }],
      };
      const sealedKeyring = aeadSeal(rootKey, Buffer.from(JSON.stringify(keyring)), KEYRING_AAD);
      if (!(await store.initialize(sealedKeyring, clock.now().toISOString()))) blob = await store.load();
      else blob = sealedKeyring;
    }
    if (blob === undefined) throw new SecretsError('secrets.decrypt_failed', 'the keyring vanished during unseal');
    let keyring: Keyring;
    try {
      keyring = JSON.parse(aeadOpen(rootKey, blob, KEYRING_AAD).toString('utf8')) as Keyring;
    } catch (err) {
      throw new SecretsError('secrets.decrypt_failed', 'the keyring does not decrypt under this unseal key (wrong key file?)', { cause: err });
    }
    this.#keys = new Map(keyring.keys.map((k) => [k.term, Buffer.from(k.key, 'base64')]));
    this.#installed = new Map(keyring.keys.map((k) => [k.term, k.createdAt]));
    this.#activeTerm = keyring.activeTerm;
    this.#rootKey = Buffer.from(rootKey);
  }

  seal(): void {
    for (const key of this.#keys?.values() ?? []) key.fill(0);
    this.#rootKey?.fill(0);
    this.#keys = undefined;
    this.#rootKey = undefined;
  }

  /** The active term and when it was installed (`sys/key-status`). */
  keyStatus(): { term: number; installTime: string } {
    this.#key(this.#activeTerm);
    return { term: this.#activeTerm, installTime: this.#installed.get(this.#activeTerm) ?? '' };
  }

  /**
   * Adds a new keyring key and makes it active (`sys/rotate`). Re-encryption is lazy: records
   * keep the term they were written under and open with it; each is re-encrypted under the new
   * term when it is next written, so a rotation costs one keyring write, not a pass over the data.
   */
  async rotate(store: SecretsKeyringStore, clock: Clock): Promise<number> {
    const root = this.#requireRoot();
    // From the stored keyring, locked, not from memory: a replica that rotated meanwhile must not
    // lose its key to ours. A keyring this root key no longer opens (another replica ran sys/init)
    // is refused, never overwritten.
    const blob = await store.lockKeyring();
    if (blob === undefined) throw new SecretsError('secrets.decrypt_failed', 'the keyring vanished');
    const stored = this.#openKeyring(root, blob);
    const term = Math.max(...stored.keys.map((k) => k.term)) + 1;
    const at = clock.now().toISOString();
    const next: Keyring = { activeTerm: term, keys: [...stored.keys, { term, key: randomBytes(32).toString('base64'), createdAt: at }] };
    await store.replace(aeadSeal(root, Buffer.from(JSON.stringify(next)), KEYRING_AAD), at);
    this.#adopt(next);
    return term;
  }

  /**
   * Re-reads the keyring, so that keys another replica added by rotation become usable here.
   * Keeps the current keys when the stored keyring no longer opens under this root key.
   */
  async reload(store: KeyringStore): Promise<void> {
    const root = this.#rootKey;
    if (!this.#keys || !root) return;
    const blob = await store.load();
    if (blob === undefined) return;
    this.#adopt(this.#openKeyring(root, blob));
  }

  #openKeyring(root: Buffer, blob: string): Keyring {
    try {
      return JSON.parse(aeadOpen(root, blob, KEYRING_AAD).toString('utf8')) as Keyring;
    } catch (err) {
      throw new SecretsError('secrets.decrypt_failed', 'the stored keyring no longer opens under this root key (re-keyed by another replica?)', { cause: err });
    }
  }

  #adopt(keyring: Keyring): void {
    this.#keys = new Map(keyring.keys.map((k) => [k.term, Buffer.from(k.key, 'base64')]));
    this.#installed = new Map(keyring.keys.map((k) => [k.term, k.createdAt]));
    this.#activeTerm = keyring.activeTerm;
  }

  /** Re-encrypts the keyring under a new root key (`sys/init` moving to Shamir shares). */
  async rewrap(newRootKey: Buffer, store: SecretsKeyringStore, clock: Clock): Promise<void> {
    this.#requireRoot();
    if (newRootKey.length !== 32) throw new SecretsError('secrets.decrypt_failed', 'the root key must be 32 bytes');
    await store.replace(this.#sealKeyring(newRootKey, this.#keys!, this.#activeTerm, this.#installed), clock.now().toISOString());
    this.#rootKey?.fill(0);
    this.#rootKey = Buffer.from(newRootKey);
  }

  #requireRoot(): Buffer {
    if (!this.#keys || !this.#rootKey) throw new SecretsError('secrets.sealed', 'the barrier is sealed');
    return this.#rootKey;
  }

  #sealKeyring(root: Buffer, keys: ReadonlyMap<number, Buffer>, activeTerm: number, installed: ReadonlyMap<number, string>): string {
    const keyring: Keyring = {
      activeTerm,
      keys: [...keys].map(([term, key]) => ({ term, key: key.toString('base64'), createdAt: installed.get(term) ?? '' })),
    };
    return aeadSeal(root, Buffer.from(JSON.stringify(keyring)), KEYRING_AAD);
  }

  encrypt(tenant: string, recordId: string, plaintext: Uint8Array): string {
    const key = this.#key(this.#activeTerm);
    return `rb1:${this.#activeTerm}:${aeadSeal(key, plaintext, aad(tenant, recordId))}`;
  }

  decrypt(tenant: string, recordId: string, ciphertext: string): Buffer {
    const m = /^rb1:(\d+):([A-Za-z0-9+/=]+)$/.exec(ciphertext);
    if (!m) throw new SecretsError('secrets.decrypt_failed', 'not a barrier ciphertext');
    try {
      return aeadOpen(this.#key(Number(m[1])), m[2]!, aad(tenant, recordId));
    } catch (err) {
      if (err instanceof SecretsError) throw err;
      throw new SecretsError('secrets.decrypt_failed', `record ${recordId} failed to decrypt`, { cause: err });
    }
  }

  #key(term: number): Buffer {
    if (!this.#keys) throw new SecretsError('secrets.sealed', 'the barrier is sealed');
    const key = this.#keys.get(term);
    if (!key) throw new SecretsError('secrets.decrypt_failed', `no keyring key for term ${term}`);
    return key;
  }
}

function aad(tenant: string, recordId: string): string {
  return `${tenant}\u0000${recordId}`;
}
