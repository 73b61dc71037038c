import type { Sealer } from '../../core/sealer.js';
import type { TransitKeyRef } from './store.js';

/**
 * The secret half of one key version: the key itself (32 bytes for the symmetric types, PKCS#8
 * DER for the asymmetric ones) and a separate 32-byte HMAC key, as Vault keeps one per version so
 * that `hmac` never reuses the encryption or signing key.
 */
export interface KeyMaterial {
  readonly key: Buffer;
  readonly hmacKey: Buffer;
}

/**
 * The barrier record id of a version: the ciphertext opens only for this tenant, mount, key name
 * and version, so a row copied to another key or version fails to decrypt.
 */
function recordId(ref: TransitKeyRef, version: number): string {
  return `transit/${ref.mount}/${ref.name}/v${version}`;
}

export function sealMaterial(sealer: Sealer, ref: TransitKeyRef, version: number, material: KeyMaterial): string {
  const json = JSON.stringify({ key: material.key.toString('base64'), hmac_key: material.hmacKey.toString('base64') });
  return sealer.encrypt(ref.tenant, recordId(ref, version), Buffer.from(json, 'utf8'));
}

/** Throws the barrier's SecretsError when sealed or when the record was tampered with or moved. */
export function unsealMaterial(sealer: Sealer, ref: TransitKeyRef, version: number, sealed: string): KeyMaterial {
  const opened = sealer.decrypt(ref.tenant, recordId(ref, version), sealed);
  const parsed = JSON.parse(Buffer.from(opened).toString('utf8')) as { key: string; hmac_key: string };
  return { key: Buffer.from(parsed.key, 'base64'), hmacKey: Buffer.from(parsed.hmac_key, 'base64') };
}
