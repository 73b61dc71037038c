import 'reflect-metadata';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../support/server.js';
import { until } from '../support/until.js';

/**
 * A client that sends an event-stream request and leaves before the server has authorized and
 * audited it (src/server/event-stream.ts): its socket closed while no stream listened, so the
 * stream must notice at opening, or the subscription (and its heartbeat timer) stays forever.
 * Each request is audited before the stream opens, so once every opening is in the audit log the
 * route has subscribed and, with the fix, unsubscribed again.
 */
describe('an event stream whose client left while its opening was audited', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ listen: true });
  });
  afterAll(async () => {
    await s?.close();
  });

  const CLIENTS = 20;

  async function leaveEarly(path: string): Promise<void> {
    const url = new URL(s.addr!);
    for (let i = 0; i < CLIENTS; i++) {
      const socket = tls.connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false });
      await new Promise((r) => socket.once('secureConnect', r));
      socket.end(`GET ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${s.adminToken}\r\naccept: text/event-stream\r\n\r\n`);
      socket.destroy();
    }
  }

  /** Waits until `count` openings of `stream` are in the audit log. */
  async function audited(stream: string, count: number): Promise<void> {
    await until(async () => {
      const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').execute();
      return rows.filter((r) => r.payload.includes(`"stream":"${stream}"`)).length >= count;
    }, `${count} openings of ${stream} audited`);
  }

  /** Lets the routes' continuations after their audit commits run. */
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };

  it('drops the subscription of /v1/pki/events', async () => {
    await leaveEarly('/v1/pki/events');
    await audited('pki-events', CLIENTS);
    await settle();
    expect(s.runtime.pkiEvents.subscribers).toBe(0);
  });

  it('drops the subscription of /v1/secrets/events', async () => {
    await leaveEarly('/v1/secrets/events');
    await audited('secrets-events', CLIENTS);
    await settle();
    expect(s.runtime.rotation.events.subscribers).toBe(0);
  });
});
