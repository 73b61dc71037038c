import type { PathStart } from '../list-keys.js';

/** One KV version 1 secret: the latest write of a path, nothing older. */
export interface Kv1Entry {
  readonly tenant: string;
  /** The mount's accessor: a remount at the same path starts empty. */
  readonly mount: string;
  readonly path: string;
  /** Barrier ciphertext of the JSON data, bound to `kv1/<mount>/<path>` and the tenant. */
  readonly ciphertext: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Storage for KV version 1. */
export interface Kv1Store {
  /** Returns undefined when nothing is stored at the path. */
  get(tenant: string, mount: string, path: string): Promise<Kv1Entry | undefined>;
  /** Inserts or replaces the path's value (`createdAt` of an existing entry is kept). */
  put(entry: Kv1Entry): Promise<void>;
  /** Returns false when nothing was stored at the path. */
  delete(tenant: string, mount: string, path: string): Promise<boolean>;
  /**
   * Paths of the mount starting with `prefix`, in code point order (src/secrets/list-keys.ts); with
   * `page`, at most `page.limit` of them from `page.after`/`page.from` (keyset paging: LIST reads
   * a folder page by page).
   */
  paths(tenant: string, mount: string, prefix: string, page?: PathStart & { readonly limit: number }): Promise<string[]>;
  /** Deletes everything of the mount (unmount). */
  purgeMount(tenant: string, mount: string): Promise<void>;
}
