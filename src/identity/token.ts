import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer token format: `rpt.<accessor>.<secret>`.
 *
 * The accessor (128 random bits) names the token in logs, audit events and the API, as Vault's
 * accessors do; the secret (256 random bits) proves possession. The server stores SHA-256 of the
 * secret: with 256 bits of entropy a fast hash is enough, and a stolen database yields no usable
 * token. Lookup is by accessor and the secret is compared in constant time, so response timing
 * reveals nothing about how much of a guessed secret was right.
 */
export interface MintedToken {
  readonly token: string;
  readonly accessor: string;
  readonly secretHash: string;
}

/**
 * `rpt`: bearer tokens. `rpw`: response-wrapping tokens (src/secrets/wrapping/), which only
 * `sys/wrapping/unwrap` and `sys/wrapping/lookup` accept: with a prefix of its own, a wrapping
 * token is not a token anywhere else by construction, not by a policy someone could loosen.
 */
export type TokenPrefix = 'rpt' | 'rpw';
const TOKEN_RES: Readonly<Record<TokenPrefix, RegExp>> = {
  rpt: /^rpt\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/,
  rpw: /^rpw\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/,
};

export function mintToken(prefix: TokenPrefix = 'rpt'): MintedToken {
  const accessor = randomBytes(16).toString('base64url');
  const secret = randomBytes(32).toString('base64url');
  return { token: `${prefix}.${accessor}.${secret}`, accessor, secretHash: hashSecret(secret) };
}

/** Splits a presented token; undefined when it is not in the format of `prefix` at all. */
export function parseToken(presented: string, prefix: TokenPrefix = 'rpt'): { accessor: string; secret: string } | undefined {
  const m = TOKEN_RES[prefix].exec(presented);
  return m ? { accessor: m[1]!, secret: m[2]! } : undefined;
}

export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/** Constant-time comparison of a presented secret with the stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  // One-shot: building a Hash object with createHash cost 0.3–0.6 µs more per authenticated request.
  const presented = hash('sha256', secret, 'buffer');
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
