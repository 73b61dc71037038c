import type { MountStore } from '../../secrets/store.js';

/**
 * Which first path segments under `/v1/` belong to the Vault API: `sys`, `auth` and the first
 * segment of every tenant's mount paths. Route matching is synchronous, so the set lives in
 * memory: a mount made by this process is added at once, and the set is reloaded from the
 * store when it is older than {@link STALE_MS} (mounts made by another replica). It only steers
 * routing: which mount serves a request is always read from the store, per tenant.
 */
const STALE_MS = 5_000;

export class MountIndex {
  #segments = new Set<string>();
  #loadedAt = 0;
  #loading: Promise<void> | undefined;

  constructor(
    private readonly store: MountStore,
    private readonly onError: (err: unknown) => void,
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

  /** True when `url` (`/v1/<segment>/…`) is a Vault path. */
  routes(url: string): boolean {
    if (!url.startsWith('/v1/')) return false;
    const end = url.slice(4).search(/[/?]/);
    const first = end === -1 ? url.slice(4) : url.slice(4, 4 + end);
    if (first === 'sys' || first === 'auth') return true;
    if (Date.now() - this.#loadedAt > STALE_MS) void this.reload();
    return this.#segments.has(decodeURIComponentSafe(first));
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
