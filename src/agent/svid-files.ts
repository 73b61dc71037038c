import { chownSync, closeSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFileAtomically } from '../core/atomic-file.js';
import type { EntryOwner } from './entry-owner.js';

/** What a workload reads: its certificate chain, its private key, and the CAs to trust. */
export interface SvidFiles {
  /** PEM: the leaf followed by the intermediate that signed it (X509-SVID §5.1 chain order). */
  readonly svidPem: string;
  /** PEM PKCS #8. */
  readonly keyPem: string;
  /** PEM: every CA the control plane currently trusts. */
  readonly bundlePem: string;
}

export const SVID_FILE = 'svid.pem';
export const KEY_FILE = 'key.pem';
export const BUNDLE_FILE = 'bundle.pem';

/**
 * Writes an entry's three files into `dir` (created 0700). The key is replaced first and the
 * certificate right after it, so the window in which a reader could pair a new key with the old
 * certificate is two renames long; readers that need a consistent pair use the workload socket,
 * which delivers all three in one message. The directory is fsynced so the renames are durable.
 * With an `owner` (the agent runs as root), the directory and files are given to that user.
 */
export function writeSvidFiles(dir: string, files: SvidFiles, owner?: EntryOwner): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (owner) chownSync(dir, owner.uid, owner.gid ?? -1);
  replaceFileAtomically(join(dir, KEY_FILE), files.keyPem, 0o600, owner);
  replaceFileAtomically(join(dir, SVID_FILE), files.svidPem, 0o644, owner);
  replaceFileAtomically(join(dir, BUNDLE_FILE), files.bundlePem, 0o644, owner);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
