import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** Who a file is given to before it becomes visible (the agent runs as root and hands files to workloads). */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number | undefined;
}

/**
 * Replaces `path` atomically: the content is written to a temporary file in the same directory,
 * flushed to disk, and renamed over the old file (rename(2) is atomic within one file system), so
 * a reader sees the old file or the new one, never a torn one, even across a crash.
 */
export function replaceFileAtomically(path: string, content: string, mode: number, owner?: FileOwner): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    // Owned before it is visible under its name: the file never exists with the wrong owner.
    if (owner) chownSync(tmp, owner.uid, owner.gid ?? -1);
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
