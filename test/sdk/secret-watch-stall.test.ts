import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { RampartClient, watchSecret } from '../../src/sdk/index.js';
import { createTestPki, type FakeServer, startFakeServer, type TestPki } from './fake-server.js';

/**
 * A stream that stops carrying anything (a proxy that stalled, a server that hung after saying
 * `connected`) must count as lost: `watchSecret` reopens it instead of waiting forever.
 */
let pki: TestPki;
let server: FakeServer;

beforeAll(async () => {
  pki = await createTestPki();
  server = await startFakeServer(pki);
});
afterAll(async () => {
  await server.close();
});

it('reopens a stream that went silent after connecting', async () => {
  let opened = 0;
  server.override = (req, res) => {
    if (req.path === '/v1/secrets/events') {
      opened++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': connected\n\n'); // and then nothing, not even a heartbeat
      return true;
    }
    if (req.path === '/v1/secret/data/app') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { data: { k: 'v' }, metadata: { version: 1 } } }));
      return true;
    }
    return false;
  };
  const client = new RampartClient({ addr: server.url, caPem: pki.caPem, token: server.validToken });
  const errors: string[] = [];
  const stop = await watchSecret(client, { mount: 'secret', path: 'app' }, () => undefined, {
    idleTimeoutMs: 150,
    minBackoffMs: 1,
    maxBackoffMs: 5,
    onError: (err) => errors.push(String(err)),
  });
  await vi.waitFor(() => expect(opened).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
  expect(errors.some((e) => e.includes('silent for 150 ms'))).toBe(true);
  await stop();
  client.close();
  server.override = undefined;
});
