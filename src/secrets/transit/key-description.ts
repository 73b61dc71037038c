import { capabilitiesOf, isSymmetric, publicKeyName } from './key-type.js';
import type { TransitKeyRecord, TransitKeyVersionRecord } from './store.js';

/**
 * A key as Vault's `GET transit/keys/<name>` shows it: configuration, capabilities and, per
 * version, the creation time (symmetric keys: Unix seconds) or the public key (asymmetric keys).
 * Never private material.
 */
export function describeKey(key: TransitKeyRecord, versions: readonly TransitKeyVersionRecord[]): Record<string, unknown> {
  const keys: Record<string, unknown> = {};
  for (const v of versions) {
    keys[String(v.version)] = isSymmetric(key.type)
      ? Math.floor(Date.parse(v.createdAt) / 1000)
      : { creation_time: v.createdAt, name: publicKeyName(key.type), public_key: v.publicKey ?? '' };
  }
  return {
    name: key.name,
    type: key.type,
    derived: key.derived,
    ...(key.derived ? { kdf: 'hkdf_sha256' } : {}),
    exportable: key.exportable,
    allow_plaintext_backup: key.allowPlaintextBackup,
    deletion_allowed: key.deletionAllowed,
    convergent_encryption: false,
    keys,
    latest_version: key.latestVersion,
    min_available_version: key.minAvailableVersion,
    min_decryption_version: key.minDecryptionVersion,
    min_encryption_version: key.minEncryptionVersion,
    auto_rotate_period: 0,
    imported_key: false,
    ...capabilitiesOf(key.type),
  };
}
