import { TransitError } from '../../core/errors.js';

/** Vault's hash algorithm names and Node's (OpenSSL's) names for them. */
const HASHES = {
  sha1: 'sha1',
  'sha2-224': 'sha224',
  'sha2-256': 'sha256',
  'sha2-384': 'sha384',
  'sha2-512': 'sha512',
  'sha3-224': 'sha3-224',
  'sha3-256': 'sha3-256',
  'sha3-384': 'sha3-384',
  'sha3-512': 'sha3-512',
} as const;

export type HashAlgorithm = keyof typeof HASHES;

/** Vault's default for sign, verify, hmac and hash. */
export const DEFAULT_HASH: HashAlgorithm = 'sha2-256';

/** Maps a Vault name to Node's; throws transit.invalid_request for anything else. */
export function nodeHashName(name: string | undefined): string {
  const chosen = name ?? DEFAULT_HASH;
  if (!Object.hasOwn(HASHES, chosen)) {
    throw new TransitError('transit.invalid_request', `unsupported hash algorithm "${chosen}"; use one of ${Object.keys(HASHES).join(', ')}`);
  }
  return HASHES[chosen as HashAlgorithm];
}
