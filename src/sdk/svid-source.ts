/**
 * Where a service's own SVID comes from: pushed by code (the agent's workload stream,
 * `watchX509Svid`, plugs in with one line) or read from files that the agent or another tool
 * replaces atomically. {@link createMtlsServer} and {@link createMtlsAgent} subscribe and swap
 * their TLS context on every update.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { X509SvidUpdate } from './workload-api.js';

/** The three PEM texts a TLS endpoint needs: its chain (leaf first), its key, and the CAs to trust. */
export type SvidMaterial = Pick<X509SvidUpdate, 'svidPem' | 'keyPem' | 'bundlePem'>;

/**
 * A source of the current SVID and its replacements.
 *
 * @example
 * ```ts
 * const unsubscribe = source.onUpdate((svid) => server.setSecureContext({ cert: svid.svidPem, key: svid.keyPem, ca: svid.bundlePem }));
 * ```
 */
export interface SvidSource {
  /** The SVID to use now; undefined until the first one arrived. */
  current(): SvidMaterial | undefined;
  /** Calls `listener` on every later SVID; returns the unsubscribe function. */
  onUpdate(listener: (svid: SvidMaterial) => void): () => void;
}

/** A source the application feeds itself. */
export interface PushSvidSource extends SvidSource {
  update(svid: SvidMaterial): void;
}

/**
 * A source fed by calls to `update`, e.g. from the agent's workload stream.
 *
 * @example
 * ```ts
 * const source = createSvidSource();
 * watchX509Svid('/run/rampart/reg_abc/workload.sock', (svid) => source.update(svid));
 * ```
 */
export function createSvidSource(initial?: SvidMaterial): PushSvidSource {
  let current = initial;
  const listeners = new Set<(svid: SvidMaterial) => void>();
  return {
    current: () => current,
    onUpdate(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    update(svid) {
      current = { svidPem: svid.svidPem, keyPem: svid.keyPem, bundlePem: svid.bundlePem };
      for (const listener of listeners) listener(current);
    },
  };
}

export interface SvidFiles {
  /** PEM chain, leaf first (the agent's `svid.pem`). */
  readonly svid: string;
  /** PEM PKCS #8 key (`key.pem`). */
  readonly key: string;
  /** PEM trust bundle (`bundle.pem`). */
  readonly bundle: string;
}

/**
 * Whether the key belongs to the chain's first certificate: the default completeness check of
 * {@link watchSvidFiles}, so a half-replaced set is never put into a TLS context.
 *
 * @example
 * ```ts
 * if (!keyMatchesCertificate(svid)) throw new Error('key and certificate do not belong together');
 * ```
 */
export function keyMatchesCertificate(svid: SvidMaterial): boolean {
  try {
    return new X509Certificate(svid.svidPem).checkPrivateKey(createPrivateKey(svid.keyPem));
  } catch {
    return false;
  }
}

/** A file source; `close` stops watching. */
export interface FileSvidSource extends SvidSource {
  close(): void;
}

/**
 * Reads the SVID from files and re-reads them whenever their directory changes. Writers replace
 * each file atomically (write a temporary file, then rename), so a read sees a whole file; a set
 * whose key does not match its certificate yet (mid-replacement) is skipped until the next change,
 * because the update is only published when `isComplete` accepts it.
 *
 * @example
 * ```ts
 * const source = await watchSvidFiles({ svid: '/run/rampart/svid.pem', key: '/run/rampart/key.pem', bundle: '/run/rampart/bundle.pem' });
 * ```
 */
export async function watchSvidFiles(files: SvidFiles, isComplete: (svid: SvidMaterial) => boolean = keyMatchesCertificate): Promise<FileSvidSource> {
  const read = async (): Promise<SvidMaterial> => ({ svidPem: await readFile(files.svid, 'utf8'), keyPem: await readFile(files.key, 'utf8'), bundlePem: await readFile(files.bundle, 'utf8') });
  const source = createSvidSource(await read());
  let reading = false;
  let again = false;
  let closed = false;
  const reload = async (): Promise<void> => {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const next = await read().catch(() => undefined);
        // A read in flight when the source was closed publishes nothing.
        if (closed) return;
        const prev = source.current();
        if (next && isComplete(next) && (next.svidPem !== prev?.svidPem || next.keyPem !== prev.keyPem || next.bundlePem !== prev.bundlePem)) source.update(next);
      } while (again);
    } finally {
      reading = false;
    }
  };
  const watchers: FSWatcher[] = [...new Set([dirname(files.svid), dirname(files.key), dirname(files.bundle)])].map((dir) => watch(dir, () => void reload()));
  return {
    current: source.current,
    onUpdate: source.onUpdate,
    close: () => {
      closed = true;
      for (const w of watchers) w.close();
    },
  };
}
