import { performance } from 'node:perf_hooks';
import type { TokenRecord, TokenStore } from '../identity/store.js';

/**
 * Token rows as authentication reads them, kept for at most {@link TOKEN_CACHE_TTL_MS}.
 *
 * Authentication reads the token row on every request; the row changes only when the token is
 * revoked, renewed or spends a use. The cache keeps what a revocation must not outlive short:
 *
 * - **In this process a change is seen at once.** Every state change a request makes commits
 *   through `RequestContext.transact` (src/server/app.ts), which calls {@link invalidate} after
 *   the commit and before the answer is sent, whatever the change was; revocation, renewal and
 *   tenant changes all take that path. A read that started before an invalidation is not stored
 *   after it (the generation check), so a lookup racing a revocation cannot resurrect the token.
 * - **Across replicas it is seen within TOKEN_CACHE_TTL_MS** (1 s), the age limit of an entry,
 *   measured on the monotonic clock so that a wall-clock step cannot extend it.
 * - **Use-limited tokens are never cached**: each use is a conditional UPDATE in the store
 *   (`spendUse`), and the record that comes back reflects it.
 *
 * Only the row is cached, never the verdict: the presented secret is still compared with the
 * stored hash, and expiry is still checked against the clock, on every request. Unknown
 * accessors are not cached (a token created on another replica works at once).
 */
export const TOKEN_CACHE_TTL_MS = 1_000;
const MAX_ENTRIES = 10_000;

interface Entry {
  readonly record: TokenRecord;
  readonly loadedAt: number;
}

export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  #generation = 0;

  constructor(
    private readonly store: Pick<TokenStore, 'get'>,
    /** Monotonic milliseconds; injected by tests. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The token row by accessor, from memory when read less than TOKEN_CACHE_TTL_MS ago. */
  async get(accessor: string): Promise<TokenRecord | undefined> {
    const now = this.now();
    const hit = this.#entries.get(accessor);
    if (hit && now - hit.loadedAt < TOKEN_CACHE_TTL_MS) return hit.record;
    if (hit) this.#entries.delete(accessor);
    const generation = this.#generation;
    const record = await this.store.get(accessor);
    if (record && record.usesLeft === undefined && record.revokedAt === null && generation === this.#generation) {
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(accessor, { record, loadedAt: now });
    }
    return record;
  }

  /** Forgets every entry: called after each committed state change of this process. */
  invalidate(): void {
    this.#generation++;
    this.#entries.clear();
  }
}

/**
 * The token store authentication reads through: `get` answers from the cache, every other method
 * is the store's own, and a use spent invalidates the cache (the last use revokes the token).
 */
export class CachedTokenStore implements TokenStore {
  constructor(
    private readonly store: TokenStore,
    private readonly cache: TokenCache,
  ) {}

  get(accessor: string): Promise<TokenRecord | undefined> {
    return this.cache.get(accessor);
  }

  async spendUse(accessor: string, at: string): Promise<number | undefined> {
    try {
      return await this.store.spendUse(accessor, at);
    } finally {
      this.cache.invalidate();
    }
  }

  insert(token: TokenRecord): Promise<void> {
    return this.store.insert(token);
  }

  async revoke(tenant: string, accessor: string, at: string): Promise<boolean> {
    try {
      return await this.store.revoke(tenant, accessor, at);
    } finally {
      this.cache.invalidate();
    }
  }

  children(tenant: string, accessor: string): Promise<string[]> {
    return this.store.children(tenant, accessor);
  }

  async renew(tenant: string, accessor: string, expiresAt: string): Promise<boolean> {
    try {
      return await this.store.renew(tenant, accessor, expiresAt);
    } finally {
      this.cache.invalidate();
    }
  }
}
