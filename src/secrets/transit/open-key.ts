import { TransitError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import { type KeyMaterial, unsealMaterial } from './material.js';
import type { TransitKeyRecord, TransitKeyRef, TransitKeyStore } from './store.js';

/**
 * A named key opened for cryptographic operations: its configuration plus the version material,
 * unsealed on first use and kept only as long as this object (one request, or one batch).
 * The version rules live here so every operation applies them the same way.
 */
export class OpenKey {
  readonly #material = new Map<number, Promise<KeyMaterial>>();

  constructor(
    readonly record: TransitKeyRecord,
    private readonly store: TransitKeyStore,
    private readonly sealer: Sealer,
  ) {}

  get ref(): TransitKeyRef {
    return { tenant: this.record.tenant, mount: this.record.mount, name: this.record.name };
  }

  /**
   * The version to encrypt, sign or HMAC with: the latest when `requested` is absent or 0 (Vault's
   * `key_version` semantics), else `requested`, which must not be below `min_encryption_version`.
   */
  writeVersion(requested: number | undefined): number {
    const key = this.record;
    if (requested === undefined || requested === 0) {
      return key.latestVersion;
    }
    if (!Number.isInteger(requested) || requested < 0 || requested > key.latestVersion) {
      throw new TransitError('transit.invalid_request', `key_version ${requested} does not exist; the latest version is ${key.latestVersion}`);
    }
    if ((key.minEncryptionVersion > 0 && requested < key.minEncryptionVersion) || requested < key.minAvailableVersion) {
      throw new TransitError('transit.version_disallowed', `key_version ${requested} is below the minimum encryption version`);
    }
    return requested;
  }

  /**
   * Whether a ciphertext, signature or HMAC of `version` may be opened or checked. A version
   * the key never had answers false, so the caller can fold it into its generic failure; one
   * below `min_decryption_version` is a policy refusal and says so (the version is not secret:
   * it is written in the clear in the value itself).
   */
  readable(version: number): boolean {
    if (version > this.record.latestVersion) return false;
    if (version < this.record.minDecryptionVersion || version < this.record.minAvailableVersion) {
      throw new TransitError('transit.version_disallowed', `version ${version} is below the key's min_decryption_version (${this.record.minDecryptionVersion})`);
    }
    return true;
  }

  /** The unsealed material of `version`; throws transit.version_disallowed when it was trimmed. */
  material(version: number): Promise<KeyMaterial> {
    let pending = this.#material.get(version);
    if (!pending) {
      pending = this.#load(version);
      this.#material.set(version, pending);
    }
    return pending;
  }

  async #load(version: number): Promise<KeyMaterial> {
    const row = await this.store.version(this.ref, version);
    if (!row) throw new TransitError('transit.version_disallowed', `version ${version} of key "${this.record.name}" is no longer available`);
    return unsealMaterial(this.sealer, this.ref, version, row.sealedMaterial);
  }
}
