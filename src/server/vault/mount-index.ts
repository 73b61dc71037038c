import { performance } from 'node:perf_hooks';
import type { Mount } from '../../secrets/engine.js';
import type { MountStore } from '../../secrets/store.js';

/**
 * Which first path segments under `/v1/` belong to the Vault API (`sys`, `auth` and the first
 * segment of every tenant's mount paths), and each tenant's mount table.
 *
 * Route matching is synchronous, so the segment set lives in memory: a mount made by this process
 * is added at once, and the set is reloaded from the store when it is older than
 * {@link STALE_MS} (mounts made by another replica). It only steers routing.
 *
 * The mount table of a tenant (which mount serves a path) is read from the store and kept for at
 * most {@link TABLE_TTL_MS}, as Vault keeps its mount table in memory rather than reading it per
 * request. In this process every change is seen at once: the Vault routes call
 * {@link invalidate} after each committed `sys/` write, the only way mounts change. A change made
 * by another replica is seen within TABLE_TTL_MS. A stale table never widens access: Cedar
 * decides on the request's full path, whichever engine then serves it.
 */
const STALE_MS = 5_000;
export const TABLE_TTL_MS = 1_000;

interface Table {
  readonly loadedAt: number;
  readonly generation: number;
  readonly mounts: Promise<readonly Mount[]>;
}

export class MountIndex {
  #segments = new Set<string>();
  #loadedAt = 0;
  #loading: Promise<void> | undefined;
  readonly #tables = new Map<string, Table>();
  /** Bumped by every invalidation, so a read that started before one is not cached after it. */
  #generation = 0;

  constructor(
    private readonly store: MountStore,
    private readonly onError: (err: unknown) => void,
    /** Monotonic milliseconds; injected by tests. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  reload(): Promise<void> {
    this.#loading ??= this.store
      .allPaths()
      .then((paths) => {
        this.#segments = new Set(paths.map((p) => p.split('/')[0]!));
        this.#loadedAt = Date.now();
      })
      .catch(this.onError)
      .finally(() => {
        this.#loading = undefined;
      });
    return this.#loading;
  }

  add(path: string): void {
    this.#segments.add(path.split('/')[0]!);
  }

  /** The tenant's mounts ordered by path, from memory when read less than TABLE_TTL_MS ago. */
  mounts(tenant: string): Promise<readonly Mount[]> {
    const now = this.now();
    const known = this.#tables.get(tenant);
    if (known && known.generation === this.#generation && now - known.loadedAt < TABLE_TTL_MS) return known.mounts;
    const generation = this.#generation;
    const mounts = this.store.list(tenant);
    const table: Table = { loadedAt: now, generation, mounts };
    this.#tables.set(tenant, table);
    // A failed read is not kept: the next request asks the store again.
    mounts.catch(() => {
      if (this.#tables.get(tenant) === table) this.#tables.delete(tenant);
    });
    return mounts;
  }

  /** Forgets every tenant's mount table; called after a committed change of this process. */
  invalidate(): void {
    this.#generation++;
    this.#tables.clear();
  }

  /** True when `url` (`/v1/<segment>/…`) is a Vault path. */
  routes(url: string): boolean {
    if (url.charCodeAt(0) !== 47 || !url.startsWith('/v1/')) return false;
    let end = 4;
    while (end < url.length) {
      const c = url.charCodeAt(end);
      if (c === 47 /* / */ || c === 63 /* ? */) break;
      end++;
    }
    const first = url.slice(4, end);
    if (first === 'sys' || first === 'auth') return true;
    if (Date.now() - this.#loadedAt > STALE_MS) void this.reload();
    return this.#segments.has(first.includes('%') ? decodeURIComponentSafe(first) : first);
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
