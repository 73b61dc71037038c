import { type CipherGCMTypes, createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { TransitError } from '../../core/errors.js';
import { decodeBase64Strict, formatVersioned, parseVersioned } from './ciphertext.js';
import { isSymmetric } from './key-type.js';
import type { OpenKey } from './open-key.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The one answer to every ciphertext that does not open: a bad prefix, a version the key never
 * had, bad base64, a truncated body, a failed tag, the wrong context or associated data.
 * Telling them apart would hand an attacker a decryption oracle.
 */
function decryptFailed(): TransitError {
  return new TransitError('transit.decrypt_failed', 'invalid ciphertext: unable to decrypt');
}

export interface EncryptRequest {
  readonly plaintext: Buffer;
  /** Required for derived keys; ignored otherwise, as in Vault. */
  readonly context?: Buffer | undefined;
  /** AEAD associated data (Vault's `associated_data`): authenticated, not encrypted, not stored. */
  readonly associatedData?: Buffer | undefined;
  /** 0 or absent: the latest version. */
  readonly keyVersion?: number | undefined;
}

export interface EncryptResult {
  readonly ciphertext: string;
  readonly keyVersion: number;
}

function requireEncryptionKey(key: OpenKey): 'aes-256-gcm' | 'chacha20-poly1305' {
  const type = key.record.type;
  if (!isSymmetric(type)) throw new TransitError('transit.unsupported_operation', `key type ${type} does not support encryption`);
  return type === 'aes256-gcm96' ? 'aes-256-gcm' : 'chacha20-poly1305';
}

/**
 * The key a version encrypts with. For a derived key it is HKDF-SHA256 (RFC 5869) with the
 * version key as input keying material, no salt, and the caller's context as `info`, 32 bytes
 * out: Vault's `kdf: hkdf_sha256`, so a context opens only what was sealed under the same context.
 */
async function encryptionKey(key: OpenKey, version: number, context: Buffer | undefined): Promise<Buffer> {
  const material = await key.material(version);
  if (!key.record.derived) return material.key;
  if (!context || context.length === 0) {
    throw new TransitError('transit.context_required', `key "${key.record.name}" is derived: send a base64 "context" with the request`);
  }
  return Buffer.from(hkdfSync('sha256', material.key, Buffer.alloc(0), context, 32));
}

/** Encrypts with a fresh random 96-bit nonce (NIST SP 800-38D §8.2.2; RFC 8439 §2.8 for ChaCha20-Poly1305). */
export async function encrypt(key: OpenKey, request: EncryptRequest): Promise<EncryptResult> {
  const algorithm = requireEncryptionKey(key);
  const version = key.writeVersion(request.keyVersion);
  const secret = await encryptionKey(key, version, request.context);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(algorithm as CipherGCMTypes, secret, nonce, { authTagLength: TAG_BYTES });
  if (request.associatedData) cipher.setAAD(request.associatedData);
  const body = Buffer.concat([cipher.update(request.plaintext), cipher.final()]);
  const payload = Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
  return { ciphertext: formatVersioned(version, payload), keyVersion: version };
}

export interface DecryptRequest {
  readonly ciphertext: string;
  readonly context?: Buffer | undefined;
  /** Must equal what the ciphertext was sealed with; a mismatch is the generic failure. */
  readonly associatedData?: Buffer | undefined;
}

/**
 * Opens a `vault:vN:` ciphertext. Every malformed or inauthentic input is transit.decrypt_failed
 * with one message; only a version below `min_decryption_version` (a policy decision about a
 * value the ciphertext carries in the clear) is told apart, as transit.version_disallowed.
 */
export async function decrypt(key: OpenKey, request: DecryptRequest): Promise<{ plaintext: Buffer; keyVersion: number }> {
  const algorithm = requireEncryptionKey(key);
  const parsed = parseVersioned(request.ciphertext);
  if (!parsed || !key.readable(parsed.version)) throw decryptFailed();
  const raw = decodeBase64Strict(parsed.payload);
  if (!raw || raw.length < NONCE_BYTES + TAG_BYTES) throw decryptFailed();
  const secret = await encryptionKey(key, parsed.version, request.context);
  try {
    const decipher = createDecipheriv(algorithm as CipherGCMTypes, secret, raw.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    if (request.associatedData) decipher.setAAD(request.associatedData);
    const plaintext = Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    return { plaintext, keyVersion: parsed.version };
  } catch {
    throw decryptFailed();
  }
}

/** Decrypts and encrypts again under the latest (or the given) version, without revealing the plaintext. */
export async function rewrap(key: OpenKey, request: DecryptRequest & { readonly keyVersion?: number | undefined }): Promise<EncryptResult> {
  const { plaintext } = await decrypt(key, request);
  try {
    return await encrypt(key, { plaintext, context: request.context, associatedData: request.associatedData, keyVersion: request.keyVersion });
  } finally {
    plaintext.fill(0);
  }
}

export const DATA_KEY_BITS = [128, 256, 512] as const;

/**
 * A fresh random data key and its ciphertext under the named key (envelope encryption). The
 * caller decides whether the plaintext half is returned (`datakey/plaintext`) or not (`wrapped`).
 */
export async function generateDataKey(
  key: OpenKey,
  request: { readonly bits: number; readonly context?: Buffer | undefined; readonly keyVersion?: number | undefined },
): Promise<{ plaintext: Buffer; ciphertext: string; keyVersion: number }> {
  if (!(DATA_KEY_BITS as readonly number[]).includes(request.bits)) {
    throw new TransitError('transit.invalid_request', `bits must be one of ${DATA_KEY_BITS.join(', ')}`);
  }
  const plaintext = randomBytes(request.bits / 8);
  const sealed = await encrypt(key, { plaintext, context: request.context, keyVersion: request.keyVersion });
  return { plaintext, ...sealed };
}
