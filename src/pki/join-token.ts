/**
 * One-time join tokens for node attestation, as SPIRE's `join_token` node attestor (spiffe.io
 * "Configuring SPIRE", join token): an operator creates a token, an agent presents it once with
 * its CSR, and receives its own SVID.
 *
 * A token is `rjt.<id>.<secret>`. The id is the lookup key and appears in the agent's SPIFFE ID
 * and the audit log; the secret is 32 random bytes of which only the SHA-256 is stored, compared
 * in constant time. Single use is enforced by the store's conditional update in the attestation's
 * transaction ({@link JoinTokenStore.consume}), so two concurrent uses cannot both succeed.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';
import { randomId } from '../core/ids.js';
import type { JoinTokenRecord, JoinTokenStore } from './join-token-store.js';
import type { SpiffeId } from './spiffe.js';

const PREFIX = 'rjt';
export const DEFAULT_JOIN_TOKEN_TTL_MS = 3_600_000;
export const MAX_JOIN_TOKEN_TTL_MS = 30 * 86_400_000;
const TOKEN_FORMAT = /^rjt\.(jt_[A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

export interface CreatedJoinToken {
  /** The whole token; shown once, never stored. */
  readonly token: string;
  readonly record: JoinTokenRecord;
}

export function createJoinToken(clock: Clock, input: { tenant: string; ttlMs: number; spiffeId: SpiffeId | null; createdBy: string }): CreatedJoinToken {
  const id = `jt_${randomId(12)}`;
  const secret = randomBytes(32).toString('base64url');
  const now = clock.now();
  return {
    token: `${PREFIX}.${id}.${secret}`,
    record: {
      id,
      tenant: input.tenant,
      secretHash: hashSecret(secret).toString('hex'),
      spiffeId: input.spiffeId,
      createdAt: now.toISOString(),
      createdBy: input.createdBy,
      expiresAt: new Date(now.getTime() + input.ttlMs).toISOString(),
      usedAt: null,
      usedBy: null,
    },
  };
}

/**
 * Finds the token and checks its secret and expiry. It does not consume it: the caller consumes
 * it with {@link JoinTokenStore.consume} in the transaction that issues the agent's SVID, so a
 * failed issuance leaves the token usable.
 *
 * @throws PkiError `pki.join_token_invalid` (malformed, unknown, wrong secret — indistinguishable),
 *   `pki.join_token_expired`, `pki.join_token_replayed`
 */
export async function checkJoinToken(store: JoinTokenStore, clock: Clock, token: string): Promise<JoinTokenRecord> {
  const m = TOKEN_FORMAT.exec(token);
  const record = m ? await store.get(m[1]!) : undefined;
  // Hash even when there is no record, so an unknown id takes as long as a wrong secret.
  const presented = hashSecret(m ? m[2]! : token);
  const expected = record ? Buffer.from(record.secretHash, 'hex') : Buffer.alloc(presented.length);
  const matches = expected.length === presented.length && timingSafeEqual(expected, presented);
  if (!record || !matches) throw new PkiError('pki.join_token_invalid', 'the join token is not recognised');
  if (record.usedAt !== null) throw new PkiError('pki.join_token_replayed', 'the join token was already used');
  if (record.expiresAt <= clock.now().toISOString()) throw new PkiError('pki.join_token_expired', 'the join token has expired');
  return record;
}

/** The token's id, for the audit log, when the token is well formed; never the secret. */
export function joinTokenId(token: string): string | undefined {
  return TOKEN_FORMAT.exec(token)?.[1];
}
