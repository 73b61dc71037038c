import { createHmac } from 'node:crypto';
import { request } from 'node:https';
import { type AuditSink, type DeliveredEvent, deliveredJson } from '../sink.js';

export interface WebhookSinkOptions {
  readonly name: string;
  /** An https:// URL; plain HTTP is refused, since events name principals and resources. */
  readonly url: string;
  /** PEM CA certificates the receiver must chain to; undefined means Node's default roots. */
  readonly ca?: string | undefined;
  /** HMAC-SHA256 key for `X-Rampart-Signature`; undefined sends no signature. */
  readonly secret?: string | undefined;
  readonly timeoutMs?: number;
}

export const SIGNATURE_HEADER = 'x-rampart-signature';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** `{"events":[{"leaf_index":N,"event":{…}},…]}`, each payload byte-exact. */
export function webhookBody(batch: readonly DeliveredEvent[]): string {
  return `{"events":[${batch.map(deliveredJson).join(',')}]}`;
}

/** `sha256=<hex HMAC-SHA256 of the raw body>`, as GitHub's webhooks sign theirs. */
export function webhookSignature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * POSTs each batch as JSON over HTTPS. A 2xx answer means delivered; anything else (or no
 * answer within the timeout) is retried with the same body and the same `Idempotency-Key`
 * (`<first leaf>-<last leaf>`), so a receiver drops a batch it already stored. Batches can be
 * re-cut after a restart, so a receiver that must be exact dedupes by `leaf_index` as well.
 */
export class WebhookSink implements AuditSink {
  readonly name: string;
  readonly #url: URL;
  readonly #options: WebhookSinkOptions;
  readonly #inFlight = new Set<{ destroy(err: Error): void }>();

  constructor(options: WebhookSinkOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'https:') throw new RangeError(`webhook sink ${options.name}: URL must be https (got ${url.protocol})`);
    this.name = options.name;
    this.#url = url;
    this.#options = options;
  }

  deliver(batch: readonly DeliveredEvent[]): Promise<void> {
    const body = Buffer.from(webhookBody(batch), 'utf8');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      [IDEMPOTENCY_HEADER]: `${batch[0]!.leafIndex}-${batch.at(-1)!.leafIndex}`,
      'user-agent': 'rampart-audit-sink',
    };
    if (this.#options.secret !== undefined) headers[SIGNATURE_HEADER] = webhookSignature(this.#options.secret, body);
    const timeoutMs = this.#options.timeoutMs ?? 30_000;
    return new Promise<void>((resolve, reject) => {
      const req = request(
        this.#url,
        {
          method: 'POST',
          headers,
          ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
          minVersion: 'TLSv1.2',
          rejectUnauthorized: true,
          timeout: timeoutMs,
          // A fresh connection per batch keeps retries independent of a half-broken pooled socket.
          agent: false,
        },
        (res) => {
          res.resume();
          res.on('error', reject);
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new Error(`webhook ${this.#url.origin} answered ${status}`));
          });
        },
      );
      this.#inFlight.add(req);
      req.on('timeout', () => req.destroy(new Error(`webhook ${this.#url.origin} did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.on('close', () => {
        this.#inFlight.delete(req);
        reject(new Error(`webhook ${this.#url.origin} closed the connection without an answer`));
      });
      req.end(body);
    });
  }

  async close(): Promise<void> {
    for (const req of this.#inFlight) req.destroy(new Error('webhook sink closed'));
    this.#inFlight.clear();
  }
}
