import { request as httpsRequest } from 'node:https';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { PKI_EVENT_RETENTION_MS, type RevokedEvent } from '../../src/pki/events.js';
import { createSvidSource, type FeedChange, RevocationFeed } from '../../src/sdk/index.js';
import { resumeLost, resumePointOf } from '../../src/server/event-resume.js';
import { TEST_DATABASES } from '../support/databases.js';
import { makeCsr } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { until } from '../support/until.js';
import { startProxy } from '../support/proxy.js';

/**
 * Issue 3, "connected SDK clients are notified", across a reconnection: `GET /v1/pki/events`
 * gives each revocation its change-log sequence as `id:`, and a client that comes back with
 * `Last-Event-ID` gets the revocations it missed, each exactly once, before the live ones; an id
 * the log no longer reaches (or not an id at all) gets `resync`. A real HTTPS listener, on each
 * test store; time moves only on the injected clock, and waits are polls for a frame.
 */

interface Frame {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly comment?: string;
}

/** Follows the stream over HTTPS and keeps every frame, comments included, in order. */
function follow(s: TestServer, headers: Record<string, string>): { frames: Frame[]; status: Promise<number>; close(): void } {
  const frames: Frame[] = [];
  let buffer = '';
  let resolveStatus: (n: number) => void = () => undefined;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const req = httpsRequest(`${s.addr}/v1/pki/events`, { headers: { authorization: `Bearer ${s.adminToken}`, ...headers }, ca: s.runtime.trustBundlePem }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end: number; (end = buffer.indexOf('\n\n')) >= 0; ) {
        const frame: Record<string, string> = {};
        for (const line of buffer.slice(0, end).split('\n')) {
          if (line.startsWith(': ')) frame.comment = line.slice(2);
          else {
            const colon = line.indexOf(': ');
            frame[line.slice(0, colon)] = line.slice(colon + 2);
          }
        }
        buffer = buffer.slice(end + 2);
        frames.push(frame);
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { frames, status, close: () => req.destroy() };
}

const connected = (f: Frame[]) => f.some((x) => x.comment === 'connected');
const revocations = (f: Frame[]) => f.filter((x) => x.event === 'revoked').map((x) => ({ id: x.id, serials: (JSON.parse(x.data!) as RevokedEvent).serial_numbers }));

describe.each(TEST_DATABASES)('PKI event stream resumes after Last-Event-ID ($name)', (database) => {
  let s: TestServer;
  const streams: { close(): void }[] = [];
  beforeAll(async () => {
    s = await startTestServer({ database, listen: true, clock: new ManualClock(new Date(Math.floor(Date.now() / 1000) * 1000)) });
  });
  afterEach(async () => {
    for (const x of streams.splice(0)) x.close();
    await until(() => s.runtime.pkiEvents.subscribers === 0, 'streams to close');
  });
  afterAll(async () => {
    await s?.close();
  });

  const open = (headers: Record<string, string> = {}) => {
    const stream = follow(s, headers);
    streams.push(stream);
    return stream;
  };
  async function issue(): Promise<string> {
    const csr = await makeCsr();
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { csr: csr.pem, spiffe_id: 'spiffe://default.rampart.local/ns/pay/sa/api', ttl: '1h' } });
    expect(r.statusCode, r.body).toBe(200);
    return (r.json() as { serial_number: string }).serial_number;
  }
  async function revoke(serial: string): Promise<void> {
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { serial_number: serial } });
    expect(r.statusCode, r.body).toBe(200);
  }

  it('replays a revocation made while disconnected exactly once, before the live ones, and never another tenant’s', async () => {
    const first = open();
    await until(() => connected(first.frames), 'connected');
    const a = await issue();
    await revoke(a);
    await until(() => revocations(first.frames).length === 1, 'the live revocation');
    const [seen] = revocations(first.frames);
    expect(seen!.serials).toEqual([a]);
    expect(seen!.id).toMatch(/^[0-9]+$/);
    first.close();

    // While no stream is open: one revocation of this tenant, one of another tenant (logged straight into the change log).
    const b = await issue();
    await revoke(b);
    const other: RevokedEvent = { type: 'revoked', serial_numbers: ['0badc0de'], spiffe_id: null, revoked_at: s.clock.now().toISOString() };
    await s.runtime.stores.pkiEvents.append('another-tenant', other, [], s.clock.now().toISOString());
    await s.runtime.pkiSync.deliver();

    const second = open({ 'last-event-id': seen!.id! });
    await until(() => connected(second.frames), 'connected after the replay');
    const c = await issue();
    await revoke(c);
    await until(() => revocations(second.frames).length >= 2, 'the replayed and the live revocation');
    const got = revocations(second.frames);
    expect(got.map((r) => r.serials)).toEqual([[b], [c]]);
    // The replay came before `connected`, the live one after; ids increase.
    const replayedAt = second.frames.findIndex((f) => f.event === 'revoked');
    expect(replayedAt).toBeLessThan(second.frames.findIndex((f) => f.comment === 'connected'));
    expect(Number(got[1]!.id)).toBeGreaterThan(Number(got[0]!.id));
    expect(Number(got[0]!.id)).toBeGreaterThan(Number(seen!.id));
    expect(second.frames.some((f) => f.event === 'resync')).toBe(false);
  });

  it('sends nothing to replay when resumed at the head, and revocations that race the replay once each', async () => {
    const head = await s.runtime.stores.pkiEvents.head();
    const serials = await Promise.all([issue(), issue(), issue()]);
    const stream = open({ 'last-event-id': String(head) });
    // Revocations commit while the stream opens and replays: each must arrive once, none lost.
    for (const serial of serials) await revoke(serial);
    await until(() => revocations(stream.frames).length >= 3 && connected(stream.frames), 'three revocations');
    await s.runtime.pkiSync.deliver();
    expect(revocations(stream.frames).map((r) => r.serials[0])).toEqual(serials);
    const ids = revocations(stream.frames).map((r) => Number(r.id));
    expect(new Set(ids).size).toBe(3);
  });

  it('the SDK feed resumes: a revocation made while its stream was cut reaches it exactly once', async () => {
    // A TCP proxy in front of the listener, whose connections the test cuts.
    const proxy = await startProxy(new URL(s.addr!));
    const csr = await makeCsr();
    const signed = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { csr: csr.pem, spiffe_id: 'spiffe://default.rampart.local/ns/pay/sa/feed', ttl: '1h' } });
    const body = signed.json() as { certificate: string; issuing_ca: string };
    const bundlePem = (await s.app.inject({ method: 'GET', url: '/v1/pki/ca/pem' })).body;
    const source = createSvidSource({ svidPem: `${body.certificate.trim()}\n${body.issuing_ca.trim()}\n`, keyPem: csr.keyPem, bundlePem });
    const feed = new RevocationFeed({ source, controlPlane: { addr: proxy.addr }, minBackoffMs: 1, maxBackoffMs: 20 });
    const changes: FeedChange[] = [];
    feed.watch((c) => changes.push(c));
    try {
      await until(() => feed.live, 'the feed to connect');
      const a = await issue();
      await revoke(a);
      await until(() => feed.isRevoked(a), 'the live revocation');
      proxy.cut();
      await until(() => !feed.live, 'the feed to notice');
      const b = await issue();
      await revoke(b);
      proxy.restore();
      await until(() => feed.live && feed.isRevoked(b), 'the replayed revocation');
      await s.runtime.pkiSync.deliver();
      const heard = changes.flatMap((c) => (c.type === 'revoked' ? c.serialNumbers : []));
      expect(heard).toEqual([a, b]);
    } finally {
      feed.close();
      await proxy.close();
    }
  });

  it.each([['abc'], ['-1'], ['1e3'], ['1234567890123456'], ['']])('answers a Last-Event-ID that is not an id (%j) with resync and no replay', async (id) => {
    const stream = open({ 'last-event-id': id });
    expect(await stream.status).toBe(200);
    await until(() => connected(stream.frames), 'connected');
    expect(stream.frames.filter((f) => f.event !== undefined).map((f) => f.event)).toEqual(['resync']);
  });

  it('answers an id past the head (not from this log) with resync, and still delivers live revocations', async () => {
    const head = await s.runtime.stores.pkiEvents.head();
    const stream = open({ 'last-event-id': String(head + 1000) });
    await until(() => connected(stream.frames), 'connected');
    expect(stream.frames.find((f) => f.event !== undefined)?.event).toBe('resync');
    const serial = await issue();
    await revoke(serial);
    await until(() => revocations(stream.frames).length === 1, 'the live revocation');
    expect(revocations(stream.frames)[0]!.serials).toEqual([serial]);
  });

  it('answers an id older than the log’s retention with resync', async () => {
    const before = await s.runtime.stores.pkiEvents.head();
    await revoke(await issue());
    // A day later an append prunes everything the retention no longer covers.
    const later = new Date(s.clock.now().getTime() + PKI_EVENT_RETENTION_MS + 60_000).toISOString();
    await s.runtime.stores.pkiEvents.append('default', { type: 'revoked', serial_numbers: ['01'], spiffe_id: null, revoked_at: later }, [], later);
    await s.runtime.pkiSync.deliver();
    const stream = open({ 'last-event-id': String(before) });
    await until(() => connected(stream.frames), 'connected');
    expect(stream.frames.filter((f) => f.event !== undefined).map((f) => f.event)).toEqual(['resync']);
  });
});

describe('resume point arithmetic', () => {
  it('takes only decimal ids of at most 15 digits from the header, else the fallback', () => {
    expect(resumePointOf('42')).toBe(42);
    expect(resumePointOf(['1', '2'])).toBeUndefined();
    expect(resumePointOf(' 42')).toBeUndefined();
    expect(resumePointOf('0x10', '7')).toBe(7);
    expect(resumePointOf(undefined)).toBeUndefined();
  });

  it('resumes exactly when every id after the resume point is still held', () => {
    // A log holding ids first..last (contiguous, pruned from the oldest end); empty when first is undefined.
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(1000), fc.nat(1200), fc.boolean(), (a, b, resumeAfter, empty) => {
        const last = Math.max(a, b);
        const first = empty ? undefined : Math.min(a, b) + 1;
        const held = (id: number) => first !== undefined && id >= first && id <= last;
        let complete = resumeAfter <= last;
        for (let id = resumeAfter + 1; id <= last; id++) complete &&= held(id);
        expect(resumeLost(resumeAfter, first, last)).toBe(!complete);
      }),
    );
  });
});
