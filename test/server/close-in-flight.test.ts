import 'reflect-metadata';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { activateVersion } from '../support/policy-versions.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { until } from '../support/until.js';

/**
 * Shutdown with a request in flight (src/server/app.ts, src/server/event-stream.ts,
 * src/server/routes/authz-decisions.ts). `app.close()` runs the preClose hooks, then
 * `server.close()`, which closes the idle connections once and waits for the others. A request
 * still being authorized or audited at that moment is past every preClose hook: unless it closes
 * its own connection when it answers, shutdown (and with it the audit flush and the store's
 * close) waits for the client to leave. Each case holds the request at a gate, closes the
 * server, opens the gate, and expects the answer and the end of the connection without the
 * client doing anything.
 */

interface Gate {
  readonly reached: Promise<void>;
  open(): void;
}

/** Replaces `obj[key]` (an async method) with one that waits at a gate on its first call. */
function gateFirstCall(obj: object, key: string): Gate {
  const target = obj as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const original = target[key]!.bind(obj);
  let open!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const gate = { reached: new Promise<void>((r) => (reached = r)), open: () => open() };
  let first = true;
  target[key] = async (...args: unknown[]) => {
    if (first) {
      first = false;
      reached();
      await opened;
    }
    return original(...args);
  };
  return gate;
}

async function closeWithRequestInFlight(s: TestServer, gate: Gate, request: string): Promise<string> {
  const url = new URL(s.addr!);
  const socket = tls.connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false });
  await new Promise((r) => socket.once('secureConnect', r));
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  const connectionEnded = new Promise((r) => socket.once('close', r));
  socket.write(request);
  await gate.reached;
  const closed = s.app.close();
  // server.close() runs after every preClose hook, and stops the listener at once.
  await until(() => !s.app.server.listening, 'the listener to close');
  gate.open();
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`app.close() still waits on the connection; received: ${received.slice(0, 200)}`)), 20_000);
  });
  try {
    await Promise.race([Promise.all([closed, connectionEnded]), stuck]);
  } finally {
    clearTimeout(timer);
    socket.destroy();
    await s.runtime.close();
  }
  return received;
}

describe('closing the server with a request in flight', () => {
  for (const path of ['/v1/pki/events', '/v1/secrets/events']) {
    it(`ends a stream of ${path} opened after the streams were ended`, { timeout: 30_000 }, async () => {
      const s = await startTestServer({ listen: true });
      const gate = gateFirstCall(s.runtime, 'transact');
      const received = await closeWithRequestInFlight(s, gate, `GET ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${s.adminToken}\r\naccept: text/event-stream\r\n\r\n`);
      expect(received).toMatch(/^HTTP\/1\.1 200 /);
      expect(received.toLowerCase()).toContain('connection: close');
    });
  }

  it('closes the connection of an ordinary request answered after closing began', { timeout: 30_000 }, async () => {
    const s = await startTestServer({ listen: true });
    const gate = gateFirstCall(s.runtime, 'transact');
    const body = '{"name":"acme"}';
    const received = await closeWithRequestInFlight(
      s,
      gate,
      `POST /v1/tenants HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${s.adminToken}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    expect(received).toMatch(/^HTTP\/1\.1 201 /);
    expect(received.toLowerCase()).toContain('connection: close');
  });

  it('answers a bundle long-poll at once when closing began while it read the bundle', { timeout: 30_000 }, async () => {
    const s = await startTestServer({ listen: true });
    await activateVersion(s, 'default', 'app', { 'app.cedar': 'permit (principal, action, resource);' });
    const current = (await s.app.inject({ method: 'GET', url: '/v1/authz/stores/app/bundle', headers: { authorization: `Bearer ${s.adminToken}` } })).json() as { version: number; entity_revision: number };
    const gate = gateFirstCall(s.runtime.decisions, 'bundle');
    const received = await closeWithRequestInFlight(
      s,
      gate,
      `GET /v1/authz/stores/app/bundle?wait=60&version=${current.version}&revision=${current.entity_revision} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${s.adminToken}\r\n\r\n`,
    );
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
  });
});
