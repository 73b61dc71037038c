import { randomBytes } from 'node:crypto';
import { TransitError } from '../../core/errors.js';

/** Largest `bytes` one `transit/random` call hands out. */
export const MAX_RANDOM_BYTES = 128 * 1024;

export type ByteFormat = 'base64' | 'hex';

export function parseByteFormat(format: string | undefined, fallback: ByteFormat): ByteFormat {
  const chosen = format ?? fallback;
  if (chosen !== 'base64' && chosen !== 'hex') throw new TransitError('transit.invalid_request', 'format must be base64 or hex');
  return chosen;
}

/** `bytes` bytes from the CSPRNG, encoded as asked (Vault's `transit/random`, default 32, base64). */
export function generateRandom(bytes: number | undefined, format: string | undefined): string {
  const count = bytes ?? 32;
  if (!Number.isInteger(count) || count < 1 || count > MAX_RANDOM_BYTES) {
    throw new TransitError('transit.invalid_request', `bytes must be an integer from 1 to ${MAX_RANDOM_BYTES}`);
  }
  return randomBytes(count).toString(parseByteFormat(format, 'base64'));
}
