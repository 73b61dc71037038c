import { createHash } from 'node:crypto';
import { nodeHashName } from './hash-algorithm.js';
import { parseByteFormat } from './random.js';

/** Vault's `transit/hash`: the digest of `input`, hex by default. */
export function hashInput(input: Buffer, algorithm: string | undefined, format: string | undefined): string {
  return createHash(nodeHashName(algorithm)).update(input).digest(parseByteFormat(format, 'hex'));
}
