import 'reflect-metadata';
import type http from 'node:http';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { chainPem, createIntermediateCa, createRootCa, issueSvid } from '../../src/pki/ca.js';
import { buildCrl } from '../../src/pki/crl.js';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { CrlCache, createMtlsAgent, createMtlsDispatcher, createMtlsServer, createSvidSource, type FeedChange, mtlsPeer, OcspCache, RevocationFeed, type SvidMaterial } from '../../src/sdk/index.js';
import { httpsFetcher, MAX_CRL_BYTES, MAX_OCSP_RESPONSE_BYTES } from '../../src/sdk/mtls.js';
import { controlPlaneOf, isCurrent, isUnder, leaseSharedFeed, type RevocationNotices } from '../../src/sdk/revocation-feed.js';
import { certificatesOf } from '../../src/sdk/svid.js';
import { startProxy } from '../support/proxy.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { until } from '../support/until.js';
import { revokeSerial, svidFrom } from '../support/svid.js';

/**
 * Issue 3, "revocable within seconds", on the relying-party side: SDK servers, agents and
 * dispatchers follow `GET /v1/pki/events` of a real in-process control plane and refuse a revoked
 * peer at its next handshake without waiting for the CRL's or OCSP answer's nextUpdate. The
 * feed's stream runs through a TCP proxy the test can cut, to show what happens while it is down
 * (revocation data at most 5 s old, refetched, failing closed) and after it comes back (every
 * cached verdict refetched). Time moves only on the injected clock.
 */

const SERVER_ID = 'spiffe://default.rampart.local/ns/pay/sa/api';
const CLIENT_ID = 'spiffe://default.rampart.local/ns/web/sa/frontend';
const OTHER_ID = 'spiffe://default.rampart.local/ns/web/sa/backoffice';

/** Resolves with the next change of `type` the feed reports. */
const next = (feed: RevocationFeed, type: FeedChange['type']) =>
  new Promise<FeedChange>((resolve) => {
    const stop = feed.watch((c) => {
      if (c.type !== type) return;
      stop();
      resolve(c);
    });
  });

describe('SDK revocation feed against a real control plane', () => {
  let s: TestServer;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  const opened: { close(): unknown }[] = [];
  const now = () => s.clock.now();
  /** CRL downloads made by the SDK (to the in-process server: the SVIDs name the advertised address); `down` makes them fail. */
  const crl = { fetches: 0, down: false };
  const fetchCrl = async (url: string) => {
    crl.fetches++;
    if (crl.down) throw new Error('connect ECONNREFUSED');
    const r = await s.app.inject({ method: 'GET', url: new URL(url).pathname });
    if (r.statusCode !== 200) throw new Error(`CRL: HTTP ${r.statusCode}`);
    return r.rawPayload;
  };
  const fetchOcsp = async (url: string, der: Uint8Array) =>
    (await s.app.inject({ method: 'POST', url: new URL(url).pathname, headers: { 'content-type': 'application/ocsp-request' }, payload: Buffer.from(der) })).rawPayload;

  let start: Date;
  beforeAll(async () => {
    start = new Date(Math.floor(Date.now() / 1000) * 1000);
    s = await startTestServer({ listen: true, clock: new ManualClock(start) });
    proxy = await startProxy(new URL(s.addr!));
  });
  // SVIDs are issued at the injected time, and OpenSSL checks them against the real one: no test
  // leaves the clock ahead. No test leaves a stream open either, to keep subscriber counts exact.
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.close();
    await until(() => s.runtime.pkiEvents.subscribers === 0);
    s.clock.set(start);
    crl.down = false;
    proxy.restore();
  });
  afterAll(async () => {
    await proxy?.close();
    await s?.close();
  });

  const svidFor = (id: string) => svidFrom(s, id);
  const revoke = (serial: string) => revokeSerial(s, serial);

  /** An mTLS server that accepts CLIENT_ID and OTHER_ID, with its refusals collected. */
  async function serve(options: Partial<Parameters<typeof createMtlsServer>[0]>): Promise<{ server: tls.Server; url: string; refused: Error[] }> {
    const refused: Error[] = [];
    const server = createMtlsServer({
      source: createSvidSource(await svidFor(SERVER_ID)),
      authorize: [CLIENT_ID, OTHER_ID],
      now,
      fetchCrl,
      handler: (req, res) => res.end(mtlsPeer(req)?.spiffeId ?? 'none'),
      onRefused: (err) => refused.push(err),
      ...options,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    opened.push({ close: () => server.close() });
    return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, refused };
  }

  /** One request over a new connection with `svid` (no revocation checks on the client side, not under test here). */
  const call = (url: string, svid: SvidMaterial) =>
    new Promise<string>((resolve, reject) => {
      const agent = createMtlsAgent({ source: createSvidSource(svid), authorize: [SERVER_ID], revocation: 'none' });
      https
        .get(url, { agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
        })
        .on('error', reject)
        .on('close', () => agent.destroy());
    });

  it('refuses a client at its first handshake after its revocation is pushed, even before (and without) a CRL refetch', async () => {
    const source = createSvidSource(await svidFor(SERVER_ID));
    const feed = new RevocationFeed({ source, controlPlane: { addr: proxy.addr }, now });
    opened.push(feed);
    await next(feed, 'connected');
    const { url, refused } = await serve({ source, revocationFeed: feed });
    const client = await svidFor(CLIENT_ID);
    const other = await svidFor(OTHER_ID);
    expect(await call(url, client)).toBe(CLIENT_ID);
    expect(await call(url, other)).toBe(OTHER_ID);
    const fetches = crl.fetches;

    // The clock moves well past the 5 s bound, not to the CRL's nextUpdate: the connected feed vouches for the cached CRL.
    s.clock.advance(60_000);
    expect(await call(url, client)).toBe(CLIENT_ID);
    expect(crl.fetches).toBe(fetches);

    const heard = next(feed, 'revoked');
    await revoke(client.serial);
    expect(await heard).toEqual({ type: 'revoked', serialNumbers: [client.serial] });
    // The CRL cannot be fetched now: the revoked client is refused as revoked all the same ...
    crl.down = true;
    await expect(call(url, client)).rejects.toThrow();
    expect(refused.at(-1)).toMatchObject({ code: 'svid.revoked' });
    // ... and the CRL cached before the event no longer decides for anyone: it is refetched, failing closed.
    await expect(call(url, other)).rejects.toThrow();
    expect(refused.at(-1)).toMatchObject({ code: 'svid.revocation_unavailable' });
    crl.down = false;
    expect(await call(url, other)).toBe(OTHER_ID);
    await expect(call(url, client)).rejects.toThrow();
    expect(refused.at(-1)).toMatchObject({ code: 'svid.revoked' });
  });

  it('while the stream is down uses revocation data at most 5 s old and fails closed without it; on reconnecting refetches at once', async () => {
    const source = createSvidSource(await svidFor(SERVER_ID));
    const feed = new RevocationFeed({ source, controlPlane: { addr: proxy.addr }, now, minBackoffMs: 1, maxBackoffMs: 20 });
    opened.push(feed);
    await next(feed, 'connected');
    const { url, refused } = await serve({ source, revocationFeed: feed });
    const client = await svidFor(CLIENT_ID);
    const other = await svidFor(OTHER_ID);
    expect(await call(url, client)).toBe(CLIENT_ID);
    s.clock.advance(30_000);
    let fetches = crl.fetches;

    const lost = next(feed, 'disconnected');
    proxy.cut();
    await lost;
    expect(feed.live).toBe(false);
    // Fetched 30 s ago, and nothing vouches for it any more: refetched.
    expect(await call(url, client)).toBe(CLIENT_ID);
    expect(crl.fetches).toBe(++fetches);
    s.clock.advance(4_000);
    expect(await call(url, client)).toBe(CLIENT_ID);
    expect(crl.fetches).toBe(fetches);

    // A revocation while the stream is down reaches no one; the next refetch, within 5 s, has it.
    await revoke(other.serial);
    s.clock.advance(1_001);
    await expect(call(url, other)).rejects.toThrow();
    expect(refused.at(-1)).toMatchObject({ code: 'svid.revoked' });
    expect(crl.fetches).toBe(++fetches);
    // With the control plane unreachable, nothing older than 5 s decides: refused, not accepted on stale data.
    crl.down = true;
    s.clock.advance(5_001);
    await expect(call(url, client)).rejects.toThrow();
    expect(refused.at(-1)).toMatchObject({ code: 'svid.revocation_unavailable' });
    crl.down = false;
    expect(await call(url, client)).toBe(CLIENT_ID);
    fetches = crl.fetches;

    // Back: the stream reconnects (with backoff) and what was cached before is refetched at the next handshake.
    const back = next(feed, 'connected');
    proxy.restore();
    await back;
    expect(feed.live).toBe(true);
    expect(await call(url, client)).toBe(CLIENT_ID);
    expect(crl.fetches).toBe(++fetches);
    s.clock.advance(60_000);
    expect(await call(url, client)).toBe(CLIENT_ID);
    expect(crl.fetches).toBe(fetches);
  });

  it('is on by default: a dispatcher checking by OCSP follows the control plane on its own and refuses a server revoked meanwhile; destroy closes the stream', async () => {
    const server = createSvidSource(await svidFor(SERVER_ID));
    const { url } = await serve({ source: server });
    const dispatcher = createMtlsDispatcher({ source: createSvidSource(await svidFor(CLIENT_ID)), authorize: [SERVER_ID], revocation: 'ocsp', fetchOcsp, now, controlPlane: { addr: s.addr! } });
    const get = async () => (await request(url, { dispatcher, reset: true })).body.text();
    expect(await get()).toBe(CLIENT_ID);
    await until(() => s.runtime.pkiEvents.subscribers === 1);
    expect(await get()).toBe(CLIENT_ID);

    await revoke(new x509.X509Certificate(server.current()!.svidPem).serialNumber);
    // The clock stands still: only the pushed event can turn the cached `good` answer into a refusal.
    await until(async () => (await get().then(() => 'accepted', (err: unknown) => (err as { code?: string }).code)) === 'svid.revoked');
    await dispatcher.destroy();
    await until(() => s.runtime.pkiEvents.subscribers === 0);
  });

  it('is off for controlPlane: false, and an mTLS server and agent close the streams they opened', async () => {
    const off = await serve({ controlPlane: false });
    const on = await serve({ controlPlane: { addr: s.addr! } });
    const agent = createMtlsAgent({ source: createSvidSource(await svidFor(CLIENT_ID)), authorize: [SERVER_ID], controlPlane: { addr: s.addr! } });
    await until(() => s.runtime.pkiEvents.subscribers === 2);
    off.server.close();
    on.server.close();
    agent.destroy();
    await until(() => s.runtime.pkiEvents.subscribers === 0);
  });

  it('finds the control plane in a Rampart SVID, and none in an SVID from elsewhere', async () => {
    expect(controlPlaneOf(await svidFor(CLIENT_ID))).toEqual({ addr: s.runtime.config.advertiseAddr });
    const clock = new ManualClock(Date.now());
    const root = await createRootCa({ commonName: 'Elsewhere Root', clock });
    const intermediate = await createIntermediateCa(root, { commonName: 'Elsewhere Intermediate', clock });
    const keys = await generateKeyPair();
    const leaf = await issueSvid(intermediate, { publicKey: keys.publicKey, spiffeId: parseSpiffeId(CLIENT_ID).id, clock, ttlMs: 3_600_000 });
    const foreign = { svidPem: chainPem(leaf, intermediate.certificate), keyPem: await exportPrivateKeyPkcs8Pem(keys.privateKey), bundlePem: chainPem(root.certificate) };
    expect(controlPlaneOf(foreign)).toBeUndefined();
    expect(() => new RevocationFeed({ source: createSvidSource(foreign) })).toThrow(TypeError);
  });

  it('never goes live against a server its bundle does not trust (the caches then keep the 5 s bound)', async () => {
    const clock = new ManualClock(Date.now());
    const root = await createRootCa({ commonName: 'Rampart Root', clock });
    const source = createSvidSource({ ...(await svidFor(CLIENT_ID)), bundlePem: chainPem(root.certificate) });
    const feed = new RevocationFeed({ source, controlPlane: { addr: proxy.addr }, minBackoffMs: 1, maxBackoffMs: 5 });
    opened.push(feed);
    const change = await next(feed, 'disconnected');
    expect(change.type === 'disconnected' && change.error.message).toMatch(/certificate/);
    expect(feed.live).toBe(false);
  });

  /** An HTTPS server with the control plane's own TLS certificate (trusted by the SVIDs' bundle), closed after the test. */
  async function serveTls(handler: http.RequestListener): Promise<string> {
    const server = https.createServer({ key: s.runtime.tls.keyPem, cert: s.runtime.tls.certPem }, handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    opened.push({ close: () => (server.closeAllConnections(), new Promise((resolve) => server.close(resolve))) });
    return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('takes a stream that answers 200 but never says `connected` for dead after idleTimeoutMs, and retries', async () => {
    let attempts = 0;
    const addr = await serveTls((_req, res) => {
      attempts++;
      res.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();
    });
    const feed = new RevocationFeed({ source: createSvidSource(await svidFor(CLIENT_ID)), controlPlane: { addr }, idleTimeoutMs: 50, minBackoffMs: 1, maxBackoffMs: 5 });
    opened.push(feed);
    const change = await next(feed, 'disconnected');
    expect(change.type === 'disconnected' && change.error.message).toMatch(/went silent/);
    await until(() => attempts >= 2);
    expect(feed.live).toBe(false);
  });

  it('shares one default stream among the servers, agents and dispatchers of one source, closed with the last of them', async () => {
    const source = createSvidSource(await svidFor(CLIENT_ID));
    const options = { source, authorize: [SERVER_ID], controlPlane: { addr: s.addr! } };
    const probe = leaseSharedFeed(source, options.controlPlane);
    const dispatchers = [createMtlsDispatcher(options), createMtlsDispatcher(options), createMtlsDispatcher(options)];
    const agent = createMtlsAgent(options);
    const server = createMtlsServer({ ...options, handler: (_req, res) => res.end() });
    if (!probe.feed.live) await next(probe.feed, 'connected');
    probe.release();
    expect(s.runtime.pkiEvents.subscribers).toBe(1);
    // Another source, another stream: its own SVID authenticates it.
    const other = createMtlsDispatcher({ ...options, source: createSvidSource(await svidFor(OTHER_ID)) });
    await until(() => s.runtime.pkiEvents.subscribers === 2);
    await other.close();
    await until(() => s.runtime.pkiEvents.subscribers === 1);
    // Closing twice releases once: the stream stays for the last holder.
    agent.destroy();
    agent.destroy();
    server.close();
    await once(server, 'close');
    await dispatchers[0]!.close();
    await dispatchers[1]!.destroy();
    expect(probe.feed.live).toBe(true);
    await dispatchers[2]!.close();
    expect(probe.feed.live).toBe(false);
    await until(() => s.runtime.pkiEvents.subscribers === 0);
  });

  it('leases one feed per source and control plane; a holder released twice counts once; the last release closes it', async () => {
    const source = createSvidSource(await svidFor(CLIENT_ID));
    const cp = { addr: s.addr! };
    const a = leaseSharedFeed(source, cp);
    const b = leaseSharedFeed(source, { ...cp });
    const viaProxy = leaseSharedFeed(source, { addr: proxy.addr });
    const withToken = leaseSharedFeed(source, { ...cp, token: 'other-principal' });
    const otherSource = leaseSharedFeed(createSvidSource(await svidFor(OTHER_ID)), cp);
    for (const lease of [viaProxy, withToken, otherSource]) {
      expect(lease.feed).not.toBe(a.feed);
      lease.release();
    }
    expect(b.feed).toBe(a.feed);
    if (!a.feed.live) await next(a.feed, 'connected');
    a.release();
    a.release();
    expect(b.feed.live).toBe(true);
    b.release();
    expect(a.feed.live).toBe(false);
    const again = leaseSharedFeed(source, cp);
    expect(again.feed).not.toBe(a.feed);
    again.release();
  });

  /** A fetcher that gets its answer, then holds it until `release()`: `reached` resolves once it holds one. */
  type Fetch = (url: string, der?: Uint8Array) => Promise<Uint8Array>;
  function held(fetch: Fetch) {
    let release!: () => void;
    let reached!: () => void;
    const state = { calls: 0, gate: new Promise<void>((r) => (release = r)), reached: new Promise<void>((r) => (reached = r)) };
    const fetcher = async (url: string, der?: Uint8Array) => {
      state.calls++;
      const answer = await fetch(url, der);
      reached();
      await state.gate;
      return answer;
    };
    return { state, fetcher, release: () => release() };
  }
  const certs = (svid: SvidMaterial) => certificatesOf(svid.svidPem) as [x509.X509Certificate, x509.X509Certificate];

  for (const kind of ['crl', 'ocsp'] as const) {
    it(`refuses a peer whose revocation is announced while its ${kind.toUpperCase()} data is in flight, and fetches again for the others`, async () => {
      const feed = new RevocationFeed({ source: createSvidSource(await svidFor(SERVER_ID)), controlPlane: { addr: s.addr! }, now });
      opened.push(feed);
      await next(feed, 'connected');
      const cache = (fetch: Fetch) => (kind === 'crl' ? new CrlCache({ fetch, now, feed }) : new OcspCache({ fetch, now, feed }));
      const fetch: Fetch = kind === 'crl' ? fetchCrl : (url, der) => fetchOcsp(url, der ?? new Uint8Array());
      const client = await svidFor(CLIENT_ID);
      const other = await svidFor(OTHER_ID);
      const bystander = await svidFor(OTHER_ID);

      // The answer (without the revocation) is in hand when the revocation is announced.
      const first = held(fetch);
      const checking = cache(first.fetcher).check(...certs(client));
      await first.state.reached;
      let heard = next(feed, 'revoked');
      await revoke(client.serial);
      await heard;
      first.release();
      await expect(checking).rejects.toMatchObject({ code: 'svid.revoked' });

      // For a peer not announced, data that predates the announcement is fetched once more, and then decides.
      const second = held(fetch);
      const checkingOther = cache(second.fetcher).check(...certs(other));
      await second.state.reached;
      heard = next(feed, 'revoked');
      await revoke(bystander.serial);
      await heard;
      second.release();
      await checkingOther;
      expect(second.state.calls).toBe(2);
    });
  }

  it('vouches only for revocation data from the control plane: a second CA with the same trust-domain name is held to the 5 s bound', async () => {
    const feed = new RevocationFeed({ source: createSvidSource(await svidFor(SERVER_ID)), controlPlane: { addr: s.addr! }, now });
    opened.push(feed);
    await next(feed, 'connected');
    const clock = new ManualClock(now());
    const root = await createRootCa({ commonName: 'Second Root', clock });
    const ca = await createIntermediateCa(root, { commonName: 'Second Intermediate', clock });
    const leafAt = async (crlDistributionUrl: string) =>
      new x509.X509Certificate((await issueSvid(ca, { publicKey: (await generateKeyPair()).publicKey, spiffeId: parseSpiffeId(CLIENT_ID).id, clock, ttlMs: 3_600_000, crlDistributionUrl })).rawData);
    const der = await buildCrl(ca, { number: 1, thisUpdate: clock.now(), nextUpdate: new Date(clock.now().getTime() + 3_600_000), entries: [] });
    let fetches = 0;
    const crls = new CrlCache({ fetch: async () => (fetches++, der), now, feed });
    const elsewhere = await leafAt('https://second-ca.example/v1/pki/issuers/x/crl');
    // The URL decides, not the name: a real download from the control plane would have to verify against this issuer.
    const atControlPlane = await leafAt(`${s.runtime.config.advertiseAddr}/v1/pki/issuers/x/crl`);
    await crls.check(elsewhere, ca.certificate);
    await crls.check(atControlPlane, ca.certificate);
    expect(fetches).toBe(2);
    s.clock.advance(4_000);
    await crls.check(elsewhere, ca.certificate);
    expect(fetches).toBe(2);
    s.clock.advance(1_001);
    await crls.check(atControlPlane, ca.certificate);
    expect(fetches).toBe(2);
    await crls.check(elsewhere, ca.certificate);
    expect(fetches).toBe(3);
  });

  it('the default fetcher refuses a CRL over 16 MiB and an OCSP answer over 64 KiB, announced or streamed', async () => {
    const sizes = { crl: MAX_CRL_BYTES + 1, ocsp: MAX_OCSP_RESPONSE_BYTES + 1, announced: true };
    const addr = await serveTls((req, res) => {
      const size = req.method === 'POST' ? sizes.ocsp : sizes.crl;
      req.resume();
      if (sizes.announced) res.setHeader('content-length', size);
      // Written in 64 KiB pieces: without content-length it goes out chunked.
      for (let sent = 0; sent < size; sent += 65_536) res.write(Buffer.alloc(Math.min(65_536, size - sent)));
      res.end();
    });
    const fetch = httpsFetcher(createSvidSource(await svidFor(CLIENT_ID)));
    for (const announced of [true, false]) {
      sizes.announced = announced;
      await expect(fetch(`${addr}/crl`)).rejects.toThrow(`the CRL exceeds ${MAX_CRL_BYTES} bytes`);
      await expect(fetch(`${addr}/ocsp`, new Uint8Array([0x30, 0]))).rejects.toThrow(`the OCSP answer exceeds ${MAX_OCSP_RESPONSE_BYTES} bytes`);
    }
    sizes.ocsp = MAX_OCSP_RESPONSE_BYTES;
    expect((await fetch(`${addr}/ocsp`, new Uint8Array([0x30, 0]))).byteLength).toBe(MAX_OCSP_RESPONSE_BYTES);
  });
});

describe('isCurrent', () => {
  const leaf = async (id: string) => {
    const clock = new ManualClock(Date.now());
    const root = await createRootCa({ commonName: 'Root', clock });
    const intermediate = await createIntermediateCa(root, { commonName: 'Intermediate', clock });
    return new x509.X509Certificate((await issueSvid(intermediate, { publicKey: (await generateKeyPair()).publicKey, spiffeId: parseSpiffeId(id).id, clock, ttlMs: 3_600_000 })).rawData);
  };

  it('never lets data decide past nextUpdate, after a revocation or reconnection, or past the bound unless a live feed covering the peer and the URL vouches', async () => {
    const local = await leaf(CLIENT_ID);
    const foreign = await leaf('spiffe://elsewhere.example/ns/web/sa/frontend');
    fc.assert(
      fc.property(
        fc.record({ nextUpdate: fc.integer({ min: 0, max: 100_000 }), fetchedAt: fc.integer({ min: 0, max: 100_000 }), mark: fc.integer({ min: 0, max: 3 }) }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
        fc.boolean(),
        (entry, now, epoch, live, isLocal, maxStalenessMs, fromControlPlane) => {
          const notices: RevocationNotices = { mark: () => epoch, vouchesFor: (m, td, u) => live && m === epoch && td === 'default.rampart.local' && isUnder(u, 'https://cp.example'), isRevoked: () => false };
          const bound = maxStalenessMs ?? 5_000;
          const peer = isLocal ? local : foreign;
          const url = fromControlPlane ? 'https://cp.example/v1/pki/ocsp' : 'https://cp.example.evil/v1/pki/ocsp';
          const withFeed = isCurrent(entry, now, peer, url, notices, bound);
          const withoutFeed = isCurrent(entry, now, peer, url, undefined, bound);
          expect(withoutFeed).toBe(now < entry.nextUpdate && now - entry.fetchedAt <= bound);
          if (withFeed) {
            expect(now).toBeLessThan(entry.nextUpdate);
            expect(entry.mark).toBe(epoch);
            expect(now - entry.fetchedAt <= bound || (live && isLocal && fromControlPlane)).toBe(true);
          }
          if (now < entry.nextUpdate && entry.mark === epoch && live && isLocal && fromControlPlane) expect(withFeed).toBe(true);
        },
      ),
    );
  });
});

describe('CrlCache with a large CRL', () => {
  it('reads a CRL of 5,000 entries (beyond the default node limit of asn1js) instead of failing closed for every peer', async () => {
    const clock = new ManualClock(Date.now());
    const root = await createRootCa({ commonName: 'Root', clock });
    const ca = await createIntermediateCa(root, { commonName: 'Intermediate', clock });
    const leafFor = async () =>
      new x509.X509Certificate(
        (await issueSvid(ca, { publicKey: (await generateKeyPair()).publicKey, spiffeId: parseSpiffeId(CLIENT_ID).id, clock, ttlMs: 3_600_000, crlDistributionUrl: 'https://cp.example/v1/pki/issuers/x/crl' })).rawData,
      );
    const [revoked, good] = [await leafFor(), await leafFor()];
    const entry = (serialNumber: string) => ({ serialNumber, revokedAt: clock.now().toISOString(), reason: 'unspecified' as const, notAfter: new Date(clock.now().getTime() + 3_600_000).toISOString() });
    const entries = [...Array.from({ length: 4_999 }, (_, i) => entry((0x10_0000 + i).toString(16))), entry(revoked.serialNumber)];
    const der = await buildCrl(ca, { number: 1, thisUpdate: clock.now(), nextUpdate: new Date(clock.now().getTime() + 3_600_000), entries });
    const crls = new CrlCache({ fetch: async () => der, now: () => clock.now() });
    await crls.check(good, ca.certificate);
    await expect(crls.check(revoked, ca.certificate)).rejects.toMatchObject({ code: 'svid.revoked' });
  });
});
