import type { IncomingMessage } from 'node:http';
import { RampartApiError, type RampartClient } from './client.js';
import { EventStreamParser, type StreamEvent } from './event-stream.js';

/**
 * What to watch: a KV v2 secret (`mount` is the mount path, `path` the secret below it), or a
 * static database role (`mount` defaults to `database`).
 *
 * @example
 * ```ts
 * const kv: SecretTarget = { mount: 'secret', path: 'app/db' };
 * const role: SecretTarget = { staticRole: 'reporting' };
 * ```
 */
export type SecretTarget = { readonly mount: string; readonly path: string } | { readonly staticRole: string; readonly mount?: string };

/**
 * A value handed to the `watchSecret` handler. For a KV secret, `version` is the KV version; for
 * a static role, the time of its last rotation in milliseconds since the epoch (it only grows).
 * `previous` is set after a rotation whose previous version stays readable for a grace period:
 * keep accepting it until `readableUntil` (e.g. an old API key still presented by clients).
 *
 * @example
 * ```ts
 * const update: SecretUpdate = { version: 3, data: { password: '…' }, previous: { version: 2, data: { password: '…' }, readableUntil: '2026-01-01T00:10:00.000Z' } };
 * ```
 */
export interface SecretUpdate {
  readonly version: number;
  readonly data: Readonly<Record<string, unknown>>;
  readonly previous?: { readonly version: number; readonly data: Readonly<Record<string, unknown>>; readonly readableUntil: string };
}

/**
 * A KV secret's rotation period ended and it has no generator: write the new version (e.g. after
 * creating the new credential where it is used). Writing any new version completes the rotation.
 *
 * @example
 * ```ts
 * const due: RotationDue = { mount: 'secret', path: 'app/api-key', version: 4 };
 * ```
 */
export interface RotationDue {
  readonly mount: string;
  readonly path: string;
  /** The current version, which the new one replaces. */
  readonly version: number;
}

/**
 * Options of {@link watchSecret}.
 *
 * @example
 * ```ts
 * const options: WatchSecretOptions = { onRotationDue: async ({ mount, path, version }) => rotateApiKey(mount, path, version), onError: console.error };
 * ```
 */
export interface WatchSecretOptions {
  /** Called when the secret is due for rotation by the application (at start too, if it already is). */
  readonly onRotationDue?: (due: RotationDue) => void | Promise<void>;
  /** Failures that do not stop the watch: a handler that threw, a lost stream (it reconnects), a failed read. */
  readonly onError?: (err: unknown) => void;
  /** Reconnection backoff: the first delay, doubled per failure up to `maxBackoffMs`, with full jitter. Defaults 500 ms and 30 s. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * A stream silent this long (no event and no heartbeat; the server sends one every 15 s), or a
   * connection that does not answer within it, counts as lost and is reopened. Default 40 s.
   */
  readonly idleTimeoutMs?: number;
}

interface Envelope {
  readonly data: Record<string, unknown>;
}

interface WireEvent {
  readonly kind: string;
  readonly version: number | null;
  readonly previous_readable_until: string | null;
}

/**
 * Watches one secret and calls `handler` with its current value, then with every new version:
 * it follows `GET /v1/secrets/events` (server-sent events; the token needs `read` on
 * `sys/events/subscribe/secrets` and on the secret), fetches each new version over the Vault API,
 * and passes the previous one along while it stays readable (its grace period). A lost stream is
 * reopened with backoff and resumes with `Last-Event-ID`; after every (re)connection the current
 * value is read again, so nothing committed meanwhile is missed. Handlers run one at a time, in
 * order of versions; a version never goes backwards.
 *
 * Resolves once the first value was handed to `handler` and the stream is open; rejects if that
 * first read fails (no such secret, no permission). Resolves to the stop function.
 *
 * @example
 * ```ts
 * const stop = await watchSecret(client, { mount: 'secret', path: 'app/db' }, ({ version, data, previous }) => {
 *   pool.setPassword(String(data.password), previous && String(previous.data.password));
 * }, { onRotationDue: async ({ version }) => writeNewApiKey(version) });
 * // …
 * await stop();
 * ```
 */
export async function watchSecret(
  client: RampartClient,
  target: SecretTarget,
  handler: (update: SecretUpdate) => void | Promise<void>,
  options: WatchSecretOptions = {},
): Promise<() => Promise<void>> {
  const isRole = 'staticRole' in target;
  const mount = trimSlashes(target.mount ?? 'database');
  const path = isRole ? target.staticRole : trimSlashes(target.path);
  const readPath = isRole ? `/v1/${mount}/static-creds/${encodePath(path)}` : `/v1/${mount}/data/${encodePath(path)}`;
  const onError = options.onError ?? (() => undefined);

  let stopped = false;
  let last: { version: number; data: Record<string, unknown> } | undefined;
  let lastEventId: string | undefined;
  let response: IncomingMessage | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  let queue: Promise<void> = Promise.resolve();

  const read = async (version?: number): Promise<{ version: number; data: Record<string, unknown> } | undefined> => {
    try {
      const res = await client.request<Envelope>('GET', readPath, version === undefined ? {} : { query: { version } });
      if (isRole) return { version: Date.parse(String(res.data.last_vault_rotation)), data: res.data };
      const metadata = res.data.metadata as { version: number };
      return { version: metadata.version, data: res.data.data as Record<string, unknown> };
    } catch (err) {
      // A version deleted meanwhile (or pruned) is simply not there any more.
      if (version !== undefined && err instanceof RampartApiError && err.status === 404) return undefined;
      throw err;
    }
  };

  const deliver = async (next: { version: number; data: Record<string, unknown> }, readableUntil: string | null) => {
    if (stopped || (last && next.version <= last.version)) return;
    let previous: SecretUpdate['previous'];
    if (readableUntil !== null && !isRole) {
      // The previous version is a courtesy: if it cannot be read (pruned, no permission), the update still goes out.
      const before = last && last.version === next.version - 1 ? last : await read(next.version - 1).catch((err: unknown) => void onError(err));
      if (before) previous = { version: before.version, data: before.data, readableUntil };
    }
    last = next;
    try {
      await handler({ version: next.version, data: next.data, ...(previous ? { previous } : {}) });
    } catch (err) {
      onError(err);
    }
  };

  const refresh = async () => {
    const current = await read();
    if (current) await deliver(current, null);
  };

  const checkDue = async () => {
    if (isRole || !options.onRotationDue) return;
    try {
      const meta = await client.request<Envelope>('GET', `/v1/${mount}/metadata/${encodePath(path)}`);
      if (meta.data.rotation_state === 'due') await options.onRotationDue({ mount, path, version: Number(meta.data.current_version) });
    } catch (err) {
      onError(err);
    }
  };

  const onEvent = (e: StreamEvent) => {
    if (e.id !== undefined) lastEventId = e.id;
    queue = queue.then(async () => {
      if (stopped) return;
      try {
        if (e.event === 'resync') return await refresh();
        const event = JSON.parse(e.data) as WireEvent;
        if (event.kind === 'kv.rotation_due') {
          await options.onRotationDue?.({ mount, path, version: event.version ?? 0 });
        } else if (event.kind === 'database.static.rotated') {
          await refresh();
        } else if ((event.kind === 'kv.rotated' || event.kind === 'kv.written') && event.version !== null && (!last || event.version > last.version)) {
          const next = await read(event.version);
          if (next) await deliver(next, event.previous_readable_until);
        }
      } catch (err) {
        onError(err);
      }
    });
  };

  /** Opens the stream; resolves once the server said `connected` (the subscription is live). */
  const connect = (): Promise<void> =>
    new Promise((resolve, reject) => {
      let connected = false;
      let failed = false;
      // `end`, `error` and `close` may all fire for one stream: it fails once.
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        if (!connected) reject(err);
        else scheduleReconnect(err);
      };
      const idleMs = options.idleTimeoutMs ?? 40_000;
      client
        .stream('/v1/secrets/events', { query: { mount, path }, headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId }, timeoutMs: idleMs })
        .then((res) => {
          if (stopped) {
            res.destroy();
            resolve();
            return;
          }
          response = res;
          const parser = new EventStreamParser(onEvent, (comment) => {
            if (comment === 'connected' && !connected) {
              connected = true;
              failures = 0;
              resolve();
            }
          });
          res.setEncoding('utf8');
          // A stalled connection (a proxy that stopped forwarding) sends neither events nor heartbeats.
          const idle = setTimeout(() => res.destroy(new Error(`the secret event stream was silent for ${idleMs} ms`)), idleMs);
          res.on('close', () => clearTimeout(idle));
          res.on('data', (chunk: string) => {
            idle.refresh();
            parser.push(chunk);
          });
          res.on('end', () => fail(new Error('the secret event stream ended')));
          res.on('error', fail);
          res.on('close', () => fail(new Error('the secret event stream closed')));
        }, reject);
    });

  let reconnecting = false;
  const scheduleReconnect = (err: Error) => {
    if (stopped || reconnecting) return;
    reconnecting = true;
    response = undefined;
    onError(err);
    const min = options.minBackoffMs ?? 500;
    const max = options.maxBackoffMs ?? 30_000;
    const delay = Math.random() * Math.min(max, min * 2 ** Math.min(failures, 20));
    failures++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      reconnecting = false;
      if (stopped) return;
      connect()
        .then(() => {
          // stop() may have run while connect() was under way: it found nothing to cancel.
          if (stopped) return;
          queue = queue.then(() => refresh().catch(onError)).then(checkDue);
        })
        .catch((e: unknown) => scheduleReconnect(e instanceof Error ? e : new Error(String(e))));
    }, delay);
    retryTimer.unref?.();
  };

  const stop = async () => {
    stopped = true;
    if (retryTimer) clearTimeout(retryTimer);
    response?.destroy();
    await queue;
  };

  try {
    await connect();
    const current = await read();
    if (current) await deliver(current, null);
    await checkDue();
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
