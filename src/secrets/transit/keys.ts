import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { TransitError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import { type TransitKeyType, generateKeyMaterial, isSymmetric } from './key-type.js';
import { sealMaterial } from './material.js';
import { OpenKey } from './open-key.js';
import type { TransitKeyRecord, TransitKeyRef, TransitKeyStore, TransitKeyVersionRecord } from './store.js';

/** Vault's name rule for transit keys (framework.GenericNameRegex), with a length bound. */
const KEY_NAME = /^\w(?:[\w.@-]{0,126}\w)?$/;

export function checkKeyName(name: string): void {
  if (!KEY_NAME.test(name)) throw new TransitError('transit.invalid_request', 'key names are 1-128 letters, digits, "_", "-", "." or "@", starting and ending with a letter, digit or "_"');
}

export interface CreateKeyOptions {
  readonly type: TransitKeyType;
  readonly derived: boolean;
  readonly exportable: boolean;
  readonly allowPlaintextBackup: boolean;
}

/** Fields of `keys/<name>/config`; an absent field keeps its value. */
export interface KeyConfigRequest {
  readonly minDecryptionVersion?: number;
  readonly minEncryptionVersion?: number;
  readonly deletionAllowed?: boolean;
  readonly exportable?: boolean;
  readonly allowPlaintextBackup?: boolean;
}

/** How many times a rotation retries after losing a race with a concurrent rotation. */
const ROTATE_ATTEMPTS = 5;

/**
 * Named-key management for one store (usually bound to the request's transaction): create, read,
 * list, rotate, configure, trim, delete, and opening a key for cryptographic operations. Key
 * material is generated here, sealed under the barrier before it reaches the store, and never
 * returned by anything but {@link OpenKey}.
 */
export class TransitKeys {
  constructor(
    private readonly store: TransitKeyStore,
    private readonly sealer: Sealer,
    private readonly clock: Clock,
  ) {}

  /**
   * Creates the key with version 1. As in Vault, creating a key that exists changes nothing and
   * is not an error; `created` tells the caller which happened.
   */
  async create(ref: TransitKeyRef, options: CreateKeyOptions): Promise<{ created: boolean; key: TransitKeyRecord }> {
    checkKeyName(ref.name);
    if (options.derived && !isSymmetric(options.type)) {
      throw new TransitError('transit.unsupported_operation', `key derivation is supported for aes256-gcm96 and chacha20-poly1305 keys, not ${options.type}`);
    }
    const existing = await this.store.get(ref);
    if (existing) return { created: false, key: existing };
    const now = this.clock.now().toISOString();
    const key: TransitKeyRecord = {
      ...ref,
      type: options.type,
      derived: options.derived,
      exportable: options.exportable,
      allowPlaintextBackup: options.allowPlaintextBackup,
      deletionAllowed: false,
      latestVersion: 1,
      minDecryptionVersion: 1,
      minEncryptionVersion: 0,
      minAvailableVersion: 0,
      createdAt: now,
      updatedAt: now,
    };
    const created = await this.store.create(key, await this.#newVersion(ref, options.type, 1, now));
    if (created) return { created: true, key };
    return { created: false, key: await this.#get(ref) };
  }

  /** Throws transit.key_not_found when the key does not exist. */
  async read(ref: TransitKeyRef): Promise<{ key: TransitKeyRecord; versions: TransitKeyVersionRecord[] }> {
    const key = await this.#get(ref);
    return { key, versions: await this.store.versions(ref) };
  }

  list(tenant: string, mount: string, after: string | undefined, limit: number): Promise<string[]> {
    return this.store.list(tenant, mount, after, limit);
  }

  /** Adds a new latest version; older versions stay usable down to `min_decryption_version`. */
  async rotate(ref: TransitKeyRef): Promise<TransitKeyRecord> {
    for (let attempt = 0; attempt < ROTATE_ATTEMPTS; attempt++) {
      const key = await this.#get(ref);
      const now = this.clock.now().toISOString();
      const next = await this.#newVersion(ref, key.type, key.latestVersion + 1, now);
      if (await this.store.addVersion(ref, next, now)) return { ...key, latestVersion: next.version, updatedAt: now };
    }
    throw new TransitError('transit.invalid_request', `key "${ref.name}" is being rotated concurrently; retry`);
  }

  /** Applies Vault's `keys/<name>/config` rules; see docs/secrets.md#transit. */
  async configure(ref: TransitKeyRef, request: KeyConfigRequest): Promise<TransitKeyRecord> {
    const key = await this.#get(ref);
    let minDecryptionVersion = request.minDecryptionVersion ?? key.minDecryptionVersion;
    const minEncryptionVersion = request.minEncryptionVersion ?? key.minEncryptionVersion;
    if (minDecryptionVersion < 0 || minEncryptionVersion < 0) throw new TransitError('transit.invalid_request', 'minimum versions cannot be negative');
    // Vault: version numbering starts at 1, so a minimum of 0 means 1.
    if (minDecryptionVersion === 0) minDecryptionVersion = 1;
    if (minDecryptionVersion > key.latestVersion) {
      throw new TransitError('transit.invalid_request', `cannot set min_decryption_version to ${minDecryptionVersion}: the latest version is ${key.latestVersion}`);
    }
    if (minEncryptionVersion > key.latestVersion) {
      throw new TransitError('transit.invalid_request', `cannot set min_encryption_version to ${minEncryptionVersion}: the latest version is ${key.latestVersion}`);
    }
    if (minEncryptionVersion > 0 && minEncryptionVersion < minDecryptionVersion) {
      throw new TransitError('transit.invalid_request', `min_encryption_version (${minEncryptionVersion}) must be at least min_decryption_version (${minDecryptionVersion})`);
    }
    if (minDecryptionVersion < key.minAvailableVersion) {
      throw new TransitError('transit.invalid_request', `min_decryption_version cannot go below the trimmed floor ${key.minAvailableVersion}`);
    }
    if (request.exportable === false && key.exportable) throw new TransitError('transit.invalid_request', 'exportable cannot be disabled once set');
    if (request.allowPlaintextBackup === false && key.allowPlaintextBackup) {
      throw new TransitError('transit.invalid_request', 'allow_plaintext_backup cannot be disabled once set');
    }
    const change = {
      minDecryptionVersion,
      minEncryptionVersion,
      deletionAllowed: request.deletionAllowed ?? key.deletionAllowed,
      exportable: request.exportable ?? key.exportable,
      allowPlaintextBackup: request.allowPlaintextBackup ?? key.allowPlaintextBackup,
      updatedAt: this.clock.now().toISOString(),
    };
    await this.store.configure(ref, change);
    return { ...key, ...change };
  }

  /**
   * Deletes the material of every version below `minAvailableVersion`, for good. Only versions
   * that are already unusable may go: the floor cannot pass `min_decryption_version` or a set
   * `min_encryption_version`.
   */
  async trim(ref: TransitKeyRef, minAvailableVersion: number): Promise<TransitKeyRecord> {
    const key = await this.#get(ref);
    if (!Number.isInteger(minAvailableVersion) || minAvailableVersion < 1) {
      throw new TransitError('transit.invalid_request', 'min_available_version must be a positive integer');
    }
    if (minAvailableVersion < key.minAvailableVersion) {
      throw new TransitError('transit.invalid_request', `min_available_version cannot go below the current floor ${key.minAvailableVersion}`);
    }
    if (minAvailableVersion > key.minDecryptionVersion) {
      throw new TransitError('transit.invalid_request', 'min_available_version cannot be above min_decryption_version');
    }
    if (key.minEncryptionVersion > 0 && minAvailableVersion > key.minEncryptionVersion) {
      throw new TransitError('transit.invalid_request', 'min_available_version cannot be above min_encryption_version');
    }
    const now = this.clock.now().toISOString();
    await this.store.trim(ref, minAvailableVersion, now);
    return { ...key, minAvailableVersion, updatedAt: now };
  }

  /** Deletes the key and every version: all its ciphertexts become undecryptable. */
  async delete(ref: TransitKeyRef): Promise<void> {
    const key = await this.#get(ref);
    if (!key.deletionAllowed) throw new TransitError('transit.deletion_not_allowed', `deletion is not allowed for key "${ref.name}"; set deletion_allowed in its config first`);
    await this.store.delete(ref);
  }

  /** The key, ready for encrypt, decrypt, sign, verify and hmac. Throws transit.key_not_found. */
  async open(ref: TransitKeyRef): Promise<OpenKey> {
    return new OpenKey(await this.#get(ref), this.store, this.sealer);
  }

  /**
   * Opens the key, creating it first (aes256-gcm96 unless `type` says otherwise) when it does
   * not exist: Vault's encrypt upsert. The caller must have authorized creation.
   */
  async openOrCreate(ref: TransitKeyRef, options: CreateKeyOptions): Promise<OpenKey> {
    const existing = await this.store.get(ref);
    if (existing) return new OpenKey(existing, this.store, this.sealer);
    const { key } = await this.create(ref, options);
    return new OpenKey(key, this.store, this.sealer);
  }

  async #get(ref: TransitKeyRef): Promise<TransitKeyRecord> {
    const key = await this.store.get(ref);
    if (!key) throw new TransitError('transit.key_not_found', `no transit key "${ref.name}"`);
    return key;
  }

  async #newVersion(ref: TransitKeyRef, type: TransitKeyType, version: number, now: string): Promise<TransitKeyVersionRecord> {
    const { key, publicKey } = await generateKeyMaterial(type);
    const sealedMaterial = sealMaterial(this.sealer, ref, version, { key, hmacKey: randomBytes(32) });
    key.fill(0);
    return { version, sealedMaterial, publicKey, createdAt: now };
  }
}
