import 'reflect-metadata';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeliveredEvent, SinkDispatcher } from '../../../src/audit/sink.js';
import { WebhookSink, webhookBody } from '../../../src/audit/sinks/webhook.js';
import { ManualClock } from '../../../src/core/clock.js';
import { ManualTimers, MemorySinkStore } from '../../support/audit-sinks.js';
import { testServerTls } from '../../support/pki.js';

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
  readonly method: string | undefined;
  readonly url: string | undefined;
}

/** Verifies `sha256=<hex>` the way a receiver does: over the raw bytes, in constant time. */
function signatureValid(secret: string, body: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  const got = Buffer.from(header.slice('sha256='.length), 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

const events = (from: number, to: number): DeliveredEvent[] =>
  Array.from({ length: to - from }, (_, i) => ({ leafIndex: from + i, payload: `{"seq":${from + i},"note":"ünï€😀",  "spaced": true}` }));

describe('WebhookSink', () => {
  const clock = new ManualClock(Date.now());
  let caPem: string;
  let otherCaPem: string;
  let server: Server;
  let url: string;
  const received: Received[] = [];
  /** Status codes to answer, in order; 200 once exhausted. `hang` never answers. */
  let answers: Array<number | 'hang'> = [];

  beforeAll(async () => {
    const tls = await testServerTls('webhook receiver', clock);
    caPem = tls.caPem;
    otherCaPem = tls.otherCaPem;
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks), method: req.method, url: req.url });
        const answer = answers.shift() ?? 200;
        if (answer === 'hang') return;
        res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : 'nope');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/siem/ingest`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  it('POSTs {"events":[…]} with the payloads verbatim, a verifiable signature and an idempotency key', async () => {
    const sink = new WebhookSink({ name: 'hook', url, ca: caPem, secret: 'shh-its-a-secret' });
    const batch = events(40, 43);
    const before = received.length;
    await sink.deliver(batch);
    await sink.close();
    const req = received[before]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/siem/ingest');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['idempotency-key']).toBe('40-42');
    expect(req.body.toString('utf8')).toBe(`{"events":[${batch.map((e) => `{"leaf_index":${e.leafIndex},"event":${e.payload}}`).join(',')}]}`);
    expect(JSON.parse(req.body.toString('utf8'))).toEqual({ events: batch.map((e) => ({ leaf_index: e.leafIndex, event: JSON.parse(e.payload) })) });
    expect(signatureValid('shh-its-a-secret', req.body, req.headers['x-rampart-signature'])).toBe(true);
    expect(signatureValid('another secret', req.body, req.headers['x-rampart-signature'])).toBe(false);
    expect(signatureValid('shh-its-a-secret', Buffer.concat([req.body, Buffer.from(' ')]), req.headers['x-rampart-signature'])).toBe(false);
  });

  it('sends no signature header without a secret', async () => {
    const sink = new WebhookSink({ name: 'hook', url, ca: caPem });
    const before = received.length;
    await sink.deliver(events(0, 1));
    expect(received[before]!.headers['x-rampart-signature']).toBeUndefined();
    expect(received[before]!.headers['idempotency-key']).toBe('0-0');
  });

  it('treats every non-2xx answer as a failure', async () => {
    const sink = new WebhookSink({ name: 'hook', url, ca: caPem });
    for (const status of [500, 503, 429, 404, 400, 302, 301]) {
      answers = [status];
      await expect(sink.deliver(events(0, 1))).rejects.toThrow(new RegExp(`answered ${status}`));
    }
    answers = [204];
    await sink.deliver(events(0, 1));
  });

  it('retries a refused batch through the dispatcher with the same body and key, until every event is accepted', async () => {
    const sink = new WebhookSink({ name: 'hook', url, ca: caPem, secret: 'k' });
    const store = new MemorySinkStore();
    store.append(9);
    const timers = new ManualTimers();
    const dispatcher = new SinkDispatcher({ store, sinks: [sink], clock, batchSize: 4, schedule: timers.schedule, initialBackoffMs: 50 });
    const before = received.length;
    answers = [503, 500, 200, 429, 200, 200];
    dispatcher.start();
    for (let i = 0; i < 10 && store.cursors.get('hook') !== 9; i++) {
      await dispatcher.settled();
      timers.fire();
    }
    await dispatcher.settled();
    await dispatcher.stop();
    const posts = received.slice(before);
    expect(posts.map((p) => p.headers['idempotency-key'])).toEqual(['0-3', '0-3', '0-3', '4-7', '4-7', '8-8']);
    expect(posts[0]!.body).toEqual(posts[2]!.body);
    expect(posts.every((p) => signatureValid('k', p.body, p.headers['x-rampart-signature']))).toBe(true);
    // A receiver deduping by key stores each event exactly once.
    const accepted = new Map(posts.map((p) => [p.headers['idempotency-key'], p.body]));
    const leaves = [...accepted.values()].flatMap((b) => (JSON.parse(b.toString('utf8')) as { events: Array<{ leaf_index: number }> }).events.map((e) => e.leaf_index));
    expect(leaves).toEqual(Array.from({ length: 9 }, (_, i) => i));
    expect(timers.requested.slice(0, 2)).toEqual([50, 100]);
  });

  it('refuses a receiver whose certificate does not chain to the configured CA', async () => {
    const sink = new WebhookSink({ name: 'hook', url, ca: otherCaPem });
    const before = received.length;
    await expect(sink.deliver(events(0, 1))).rejects.toThrow(/certificate/i);
    expect(received.length).toBe(before);
  });

  it('gives up on a receiver that does not answer within the timeout, and close() aborts a request', async () => {
    answers = ['hang'];
    const slow = new WebhookSink({ name: 'hook', url, ca: caPem, timeoutMs: 100 });
    await expect(slow.deliver(events(0, 1))).rejects.toThrow(/did not answer/);
    answers = ['hang'];
    const closing = new WebhookSink({ name: 'hook', url, ca: caPem });
    const before = received.length;
    const pending = closing.deliver(events(0, 1));
    for (let i = 0; i < 1000 && received.length === before; i++) await new Promise((r) => setTimeout(r, 1));
    await closing.close();
    await expect(pending).rejects.toThrow(/closed/);
  });

  it('accepts only https URLs', () => {
    expect(() => new WebhookSink({ name: 'hook', url: 'http://siem.example/ingest' })).toThrow(/https/);
    expect(webhookBody(events(1, 3))).toBe(`{"events":[{"leaf_index":1,"event":${events(1, 2)[0]!.payload}},{"leaf_index":2,"event":${events(2, 3)[0]!.payload}}]}`);
  });
});
