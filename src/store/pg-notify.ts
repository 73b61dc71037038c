import pg from 'pg';

export interface NotificationHandlers {
  /** A `NOTIFY` on the channel, with its payload ('' when none). */
  onNotification(payload: string): void;
  /**
   * The listener is (again) in place. Notifications sent while it was not were lost, not queued
   * (PostgreSQL delivers NOTIFY only to sessions listening at commit), so re-read what they cover.
   */
  onListening(): void;
  /** The connection failed or dropped; the listener reconnects by itself. */
  onError(err: Error): void;
}

export interface ReconnectBackoff {
  /** First delay after a failure. */
  readonly minMs: number;
  /** The delay doubles per consecutive failure up to this. */
  readonly maxMs: number;
}

const DEFAULT_BACKOFF: ReconnectBackoff = { minMs: 250, maxMs: 10_000 };

/**
 * `LISTEN` on one PostgreSQL channel over a dedicated connection: a pooled connection cannot
 * listen, since the pool hands it to other queries and may close it when idle. A lost connection
 * is re-opened with exponential backoff and jitter (so that replicas cut off together do not
 * reconnect in lockstep); notifications are lost meanwhile, which `onListening` reports.
 */
export class PgNotificationListener {
  readonly #url: string;
  readonly #channel: string;
  readonly #handlers: NotificationHandlers;
  readonly #backoff: ReconnectBackoff;
  #client: pg.Client | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(url: string, channel: string, handlers: NotificationHandlers, backoff: ReconnectBackoff = DEFAULT_BACKOFF) {
    this.#url = url;
    this.#channel = channel;
    this.#handlers = handlers;
    this.#backoff = backoff;
  }

  /** Whether the listener is connected and listening now. */
  get listening(): boolean {
    return this.#client !== undefined;
  }

  /** Connects in the background; failures are reported to `onError` and retried. */
  start(): void {
    void this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ connectionString: this.#url, keepAlive: true });
    let failed = false;
    const fail = (err: Error) => {
      if (failed || this.#closed) return;
      failed = true;
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => undefined);
      this.#handlers.onError(err);
      this.#retry();
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error(`the connection listening on ${this.#channel} ended`)));
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#handlers.onNotification(message.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.#channel)}`);
    } catch (err) {
      fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (failed) return;
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#failures = 0;
    this.#handlers.onListening();
  }

  #retry(): void {
    if (this.#closed) return;
    const ceiling = Math.min(this.#backoff.maxMs, this.#backoff.minMs * 2 ** this.#failures);
    this.#failures += 1;
    this.#timer = setTimeout(() => void this.#connect(), ceiling / 2 + Math.random() * (ceiling / 2));
    this.#timer.unref();
  }
}
