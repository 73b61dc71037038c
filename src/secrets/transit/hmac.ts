import { createHmac, timingSafeEqual } from 'node:crypto';
import { TransitError } from '../../core/errors.js';
import { decodeBase64Strict, formatVersioned, parseVersioned } from './ciphertext.js';
import { nodeHashName } from './hash-algorithm.js';
import type { OpenKey } from './open-key.js';

/**
 * HMAC (RFC 2104) of the input under the version's own HMAC key, never the encryption or signing
 * key, formatted `vault:vN:<base64>` like Vault.
 */
export async function computeHmac(
  key: OpenKey,
  request: { readonly input: Buffer; readonly algorithm?: string | undefined; readonly keyVersion?: number | undefined },
): Promise<{ hmac: string; keyVersion: number }> {
  const hash = nodeHashName(request.algorithm);
  const version = key.writeVersion(request.keyVersion);
  const { hmacKey } = await key.material(version);
  const mac = createHmac(hash, hmacKey).update(request.input).digest('base64');
  return { hmac: formatVersioned(version, mac), keyVersion: version };
}

/**
 * Checks an HMAC in constant time. A well-formed HMAC that does not match, or names a version
 * the key never had, is `false`; a value without the `vault:vN:` shape is transit.invalid_request.
 */
export async function verifyHmac(
  key: OpenKey,
  request: { readonly input: Buffer; readonly hmac: string; readonly algorithm?: string | undefined },
): Promise<boolean> {
  const hash = nodeHashName(request.algorithm);
  const parsed = parseVersioned(request.hmac);
  if (!parsed) throw new TransitError('transit.invalid_request', 'invalid hmac: expected vault:v<version>:<base64>');
  if (!key.readable(parsed.version)) return false;
  const given = decodeBase64Strict(parsed.payload);
  const { hmacKey } = await key.material(parsed.version);
  const expected = createHmac(hash, hmacKey).update(request.input).digest();
  return given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
}
