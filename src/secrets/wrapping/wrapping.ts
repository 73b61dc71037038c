import type { Clock } from '../../core/clock.js';
import { parseDuration } from '../../core/duration.js';
import { SecretsError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import type { WrappedResponseRecord, WrappingStore } from './store.js';

/**
 * Vault's response wrapping (docs: concepts/response-wrapping; api-docs/system/wrapping-*): a
 * response is replaced by a single-use token that opens it. The response is stored only as
 * barrier ciphertext bound to its tenant and the wrapping token's accessor, so a row copied to
 * another tenant or accessor does not open; the token's secret is stored only as SHA-256.
 *
 * - Single use: unwrap (and rewrap) delete the record with one conditional DELETE inside the
 *   request's transaction, so of any number of concurrent unwraps exactly one gets the response.
 * - Expiry: against the injected clock; an expired record answers like an unknown one, and every
 *   new wrap deletes the expired ones, so their ciphertexts do not outlive them for long.
 * - Every failure (unknown, used, expired, another tenant's, malformed) is the same
 *   `secrets.wrapping_token_invalid`, as Vault answers "wrapping token is not valid or does not
 *   exist": the answer tells a prober nothing about which it was.
 */

/** The wrapping token's format, provided by the identity capability (src/identity/token.ts). */
export interface WrappingTokens {
  mint(): { readonly token: string; readonly accessor: string; readonly secretHash: string };
  parse(presented: string): { readonly accessor: string; readonly secret: string } | undefined;
  matches(secret: string, storedHash: string): boolean;
}

export interface WrappingContext {
  readonly store: WrappingStore;
  readonly sealer: Sealer;
  readonly clock: Clock;
  readonly tokens: WrappingTokens;
}

/** Vault's `wrap_info`. */
export interface WrapInfo {
  readonly token: string;
  readonly accessor: string;
  readonly ttl: number;
  readonly creation_time: string;
  readonly creation_path: string;
  readonly wrapped_accessor?: string;
}

/** The longest a wrapping token may live: Vault's default max TTL, as for every token here. */
export const MAX_WRAP_TTL_SECONDS = 768 * 3600;

const INVALID = 'wrapping token is not valid or does not exist';

/**
 * The `X-Vault-Wrap-TTL` header in seconds (a duration such as `5m`, or seconds); undefined
 * when absent or zero (no wrapping, as in Vault). The header comes from the network: anything
 * that is not a duration of 1 s to 768 h is refused.
 */
export function parseWrapTtl(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '' || header.trim() === '0') return undefined;
  const ms = parseDuration(header.trim());
  if (ms === undefined || ms < 1000 || ms > MAX_WRAP_TTL_SECONDS * 1000) {
    throw new SecretsError('secrets.invalid_request', `X-Vault-Wrap-TTL: a duration between 1s and ${MAX_WRAP_TTL_SECONDS / 3600}h`);
  }
  return Math.floor(ms / 1000);
}

function recordId(accessor: string): string {
  return `wrapping/${accessor}`;
}

export interface WrapInput {
  readonly tenant: string;
  /** The response body, exactly as unwrap will answer it. */
  readonly response: Readonly<Record<string, unknown>>;
  readonly ttl: number;
  readonly creationPath: string;
  readonly wrappedAccessor?: string | undefined;
}

/** Seals `response` under a new wrapping token; the returned `token` is its only copy. */
export async function wrapResponse(ctx: WrappingContext, input: WrapInput): Promise<WrapInfo> {
  const now = ctx.clock.now();
  await ctx.store.purgeExpired(now.toISOString());
  const minted = ctx.tokens.mint();
  const record: WrappedResponseRecord = {
    accessor: minted.accessor,
    tenant: input.tenant,
    secretHash: minted.secretHash,
    creationPath: input.creationPath,
    creationTime: now.toISOString(),
    ttl: input.ttl,
    expiresAt: new Date(now.getTime() + input.ttl * 1000).toISOString(),
    wrappedAccessor: input.wrappedAccessor,
    ciphertext: ctx.sealer.encrypt(input.tenant, recordId(minted.accessor), Buffer.from(JSON.stringify(input.response), 'utf8')),
  };
  await ctx.store.insert(record);
  return wrapInfo(record, minted.token);
}

function wrapInfo(record: WrappedResponseRecord, token: string): WrapInfo {
  return {
    token,
    accessor: record.accessor,
    ttl: record.ttl,
    creation_time: record.creationTime,
    creation_path: record.creationPath,
    ...(record.wrappedAccessor === undefined ? {} : { wrapped_accessor: record.wrappedAccessor }),
  };
}

/**
 * The live record a presented wrapping token opens in `tenant`. `tenant` undefined: the token's
 * own (a first-party unwrap that names no namespace).
 */
export async function findWrapping(ctx: WrappingContext, tenant: string | undefined, presented: string): Promise<WrappedResponseRecord> {
  const parsed = ctx.tokens.parse(presented);
  const record = parsed ? await ctx.store.get(parsed.accessor) : undefined;
  if (!parsed || !record || !ctx.tokens.matches(parsed.secret, record.secretHash) || (tenant !== undefined && record.tenant !== tenant) || record.expiresAt <= ctx.clock.now().toISOString()) {
    throw new SecretsError('secrets.wrapping_token_invalid', INVALID);
  }
  return record;
}

/**
 * `sys/wrapping/unwrap`: the wrapped response, once (run it in the request's transaction). The
 * record is taken out of the store; a concurrent unwrap or rewrap that got there first wins.
 */
export async function unwrapResponse(ctx: WrappingContext, tenant: string | undefined, presented: string): Promise<{ record: WrappedResponseRecord; response: Record<string, unknown> }> {
  const record = await findWrapping(ctx, tenant, presented);
  if (!(await ctx.store.take(record.accessor))) throw new SecretsError('secrets.wrapping_token_invalid', INVALID);
  const plain = ctx.sealer.decrypt(record.tenant, recordId(record.accessor), record.ciphertext);
  return { record, response: JSON.parse(Buffer.from(plain).toString('utf8')) as Record<string, unknown> };
}

/** `sys/wrapping/lookup`: what the token wraps, without spending it. */
export async function lookupWrapping(ctx: WrappingContext, tenant: string | undefined, presented: string): Promise<{ record: WrappedResponseRecord; data: Record<string, unknown> }> {
  const record = await findWrapping(ctx, tenant, presented);
  return { record, data: { creation_path: record.creationPath, creation_time: record.creationTime, creation_ttl: record.ttl } };
}

/**
 * `sys/wrapping/rewrap`: the same response under a new wrapping token with the original TTL and
 * creation path (re-sealed under the barrier's current key); the old token stops working.
 */
export async function rewrapResponse(ctx: WrappingContext, tenant: string, presented: string): Promise<{ previous: WrappedResponseRecord; info: WrapInfo }> {
  const { record, response } = await unwrapResponse(ctx, tenant, presented);
  const info = await wrapResponse(ctx, { tenant, response, ttl: record.ttl, creationPath: record.creationPath, wrappedAccessor: record.wrappedAccessor });
  return { previous: record, info };
}
