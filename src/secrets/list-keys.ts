/**
 * Vault's LIST answer: the immediate children of a folder, a key name or a `sub/` folder each
 * (Vault api-docs, "LIST"; KV v1 and v2, `sys/leases/lookup/<prefix>`). Every engine that lists
 * stored paths folds them with these functions.
 *
 * Order is code point order, which is what SQLite's BINARY collation, PostgreSQL's "C" collation
 * and Go's string comparison (Vault) all sort UTF-8 text by.
 */

/** The child of the folder `prefix` that `path` lies in: `name` or `name/`; '' when `path` is the prefix itself. */
export function childKey(path: string, prefix: string): string {
  const rest = path.slice(prefix.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash + 1);
}

/**
 * Immediate children of `prefix` among `paths` (all under it), sorted; `after` and `limit` page
 * through them (Rampart's extension: Vault always answers the full list, which is what a request
 * without them gets).
 */
export function childKeys(paths: Iterable<string>, prefix: string, after: string | undefined, limit: number | undefined): string[] {
  const children = new Set<string>();
  for (const path of paths) children.add(childKey(path, prefix));
  children.delete('');
  const sorted = [...children].sort();
  const from = after === undefined ? sorted : sorted.filter((c) => c > after);
  return limit === undefined ? from : from.slice(0, limit);
}

/**
 * The least string greater than every string that starts with `prefix`, in code point order: the
 * prefix with its last code point incremented (a trailing U+10FFFF is dropped first, and the
 * surrogate range is stepped over). Undefined when no string bounds them (`''`, or only U+10FFFF).
 * `path >= prefix AND path < prefixEnd(prefix)` selects exactly the paths under `prefix`, without
 * LIKE's wildcards and case folding, and without counting characters (a JS length counts UTF-16
 * code units, SQL's substr counts characters).
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0) as number);
  while (points.length > 0 && points.at(-1) === 0x10ffff) points.pop();
  const last = points.pop();
  if (last === undefined) return undefined;
  return String.fromCodePoint(...points, last === 0xd7ff ? 0xe000 : last + 1);
}

/** Where a page of stored paths starts: after one path (exclusive), or from one (inclusive). */
export interface PathStart {
  readonly after?: string;
  readonly from?: string;
}

/** Reads up to `limit` paths under the listed prefix, in code point order, from `start`. */
export type PathPageReader = (start: PathStart, limit: number) => Promise<readonly string[]>;

const PAGE = 1_000;

/**
 * Immediate children of `prefix` (a folder ending in `/`, or '' for the root), read page by page
 * from storage ordered by path: a folder's contents are stepped over with one read from its
 * `prefixEnd`, so memory and reads grow with the children answered, not with every path below.
 * `after` (a child, exclusive) and `limit` page as `childKeys` does; without a limit every child
 * is answered, as Vault does.
 */
export async function readChildKeys(read: PathPageReader, prefix: string, after: string | undefined, limit: number | undefined): Promise<string[]> {
  const keys: string[] = [];
  let start: PathStart = after === undefined ? {} : after.endsWith('/') ? folderEnd(prefix + after) : { after: prefix + after };
  for (;;) {
    const want = limit === undefined ? PAGE : Math.min(PAGE, limit - keys.length);
    const page = await read(start, want);
    for (const path of page) {
      const key = childKey(path, prefix);
      if (key === '' || key === keys.at(-1)) continue;
      keys.push(key);
      if (keys.length === limit) return keys;
    }
    const last = page.at(-1);
    if (last === undefined || page.length < want) return keys;
    const lastKey = childKey(last, prefix);
    start = lastKey.endsWith('/') ? folderEnd(prefix + lastKey) : { after: last };
  }
}

/** Start after everything in `folder` (which ends in `/`, so it has an end). */
const folderEnd = (folder: string): PathStart => ({ from: prefixEnd(folder) as string });
