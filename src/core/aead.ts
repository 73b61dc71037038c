import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM with a fresh random 96-bit nonce per message (NIST SP 800-38D §8.2.2) and
 * associated data binding the ciphertext to its context. Encoded as base64(nonce ‖ ciphertext ‖
 * 128-bit tag). Used by the barrier and by the audit log's per-subject keys.
 */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export function aeadSeal(key: Uint8Array, plaintext: Uint8Array, associated: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(associated, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
}

/** Throws when the ciphertext is malformed, was tampered with, or belongs to another context. */
export function aeadOpen(key: Uint8Array, encoded: string, associated: string): Buffer {
  const raw = Buffer.from(encoded, 'base64');
  if (raw.length < NONCE_BYTES + TAG_BYTES) throw new Error('ciphertext too short');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE_BYTES));
  decipher.setAAD(Buffer.from(associated, 'utf8'));
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
}
