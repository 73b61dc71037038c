/**
 * Who may read an entry's directory. The agent does not inspect the peer of its socket; instead,
 * when it runs as root, it gives each entry's directory, files and socket to the user (and group)
 * the entry's `unix:uid:` (and `unix:gid:`) selector names, so the kernel's permission check on
 * the 0700 directory is the workload attestation. Selectors all must match, so an entry naming two
 * different uids matches no process: its files stay root's.
 */
export interface EntryOwner {
  readonly uid: number;
  readonly gid: number | undefined;
}

/** The owner an entry's selectors name, or undefined when they name no single uid. */
export function entryOwner(selectors: readonly string[]): EntryOwner | undefined {
  const ids = (prefix: string) => [...new Set(selectors.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length)))];
  const [uid, ...moreUids] = ids('unix:uid:');
  const [gid, ...moreGids] = ids('unix:gid:');
  const number = (v: string | undefined) => (v !== undefined && /^\d{1,10}$/.test(v) && Number(v) < 2 ** 32 - 1 ? Number(v) : undefined);
  if (moreUids.length > 0 || number(uid) === undefined) return undefined;
  return { uid: number(uid)!, gid: moreGids.length > 0 ? undefined : number(gid) };
}
