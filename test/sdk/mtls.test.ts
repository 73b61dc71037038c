import 'reflect-metadata';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createMtlsAgent, createMtlsServer, createSvidSource, CrlCache, mtlsPeer, OcspCache, type PushSvidSource } from '../../src/sdk/index.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { bundleOf, svidFrom } from '../support/svid.js';

/**
 * The SDK's mTLS against SVIDs issued by a real control plane: SPIFFE ID authorization,
 * revocation through the CRL (fail closed), and the issue's rotation test: a keep-alive pool and
 * fresh connections keep working, with zero failed requests, while the intermediate CA is rotated
 * through the API and both sides' SVIDs are rotated.
 */

const SERVER_ID = 'spiffe://default.rampart.local/ns/pay/sa/api';
const CLIENT_ID = 'spiffe://default.rampart.local/ns/web/sa/frontend';
const STRANGER_ID = 'spiffe://default.rampart.local/ns/web/sa/stranger';

describe.each(TEST_DATABASES)('SDK mTLS with Rampart SVIDs ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  const opened: { close(): unknown }[] = [];

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
    admin = { authorization: `Bearer ${s.adminToken}` };
  });
  afterAll(async () => {
    for (const o of opened) o.close();
    await s?.close();
  });

  const bundle = () => bundleOf(s);
  const svidFor = (id: string) => svidFrom(s, id);
  /** The SVIDs name the advertised address; the test server listens on an ephemeral port. */
  const fetchCrl = async (url: string) => {
    const path = new URL(url).pathname;
    const r = await s.app.inject({ method: 'GET', url: path });
    if (r.statusCode !== 200) throw new Error(`CRL ${path}: ${r.statusCode}`);
    return r.rawPayload;
  };

  async function serve(source: PushSvidSource, authorize: readonly string[], crls: CrlCache, refused: Error[] = []): Promise<{ server: tls.Server; url: string; handshakes: () => number }> {
    let handshakes = 0;
    const server = createMtlsServer({
      source,
      authorize,
      revocation: crls,
      handler: (req, res) => res.end(mtlsPeer(req)?.spiffeId ?? 'none'),
      onRefused: (err) => refused.push(err),
    });
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    opened.push({ close: () => server.close() });
    return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, handshakes: () => handshakes };
  }

  const get = (url: string, agent: https.Agent) =>
    new Promise<string>((resolve, reject) => {
      https
        .get(url, { agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
        })
        .on('error', reject);
    });

  it('connects two workloads by SPIFFE ID, refuses an unauthorized one, and a revoked one once the CRL is refreshed', async () => {
    const crls = new CrlCache({ fetch: fetchCrl });
    const serverSource = createSvidSource(await svidFor(SERVER_ID));
    const refused: Error[] = [];
    const { url } = await serve(serverSource, [CLIENT_ID], crls, refused);

    const clientSvid = await svidFor(CLIENT_ID);
    const client = createMtlsAgent({ source: createSvidSource(clientSvid), authorize: [SERVER_ID], revocation: crls });
    opened.push({ close: () => client.destroy() });
    expect(await get(url, client)).toBe(CLIENT_ID);

    // A client whose ID is not on the server's list never gets a request through.
    const stranger = createMtlsAgent({ source: createSvidSource(await svidFor(STRANGER_ID)), authorize: [SERVER_ID], revocation: crls });
    opened.push({ close: () => stranger.destroy() });
    await expect(get(url, stranger)).rejects.toThrow();
    expect(refused.at(-1)?.message).toMatch(/not authorized/);

    // The client refuses a server that is not the one it expects.
    const picky = createMtlsAgent({ source: createSvidSource(clientSvid), authorize: ['spiffe://default.rampart.local/ns/other'], revocation: crls });
    opened.push({ close: () => picky.destroy() });
    await expect(get(url, picky)).rejects.toThrow(/not authorized/);

    // Revoked: refused on the next new connection after the CRL cache hears of it.
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: admin, payload: { serial_number: clientSvid.serial } });
    expect(r.statusCode).toBe(200);
    crls.invalidate();
    const fresh = createMtlsAgent({ source: createSvidSource(clientSvid), authorize: [SERVER_ID], revocation: crls });
    opened.push({ close: () => fresh.destroy() });
    await expect(get(url, fresh)).rejects.toThrow();
    expect(refused.at(-1)?.message).toMatch(/revoked/);
  });

  /** OCSP requests go to the in-process server (the SVIDs name the advertised address). */
  const ocspFetcher = () => async (url: string, der: Uint8Array) =>
    (await s.app.inject({ method: 'POST', url: new URL(url).pathname, headers: { 'content-type': 'application/ocsp-request' }, payload: Buffer.from(der) })).rawPayload;

  it('checks revocation by OCSP with a nonce: good, then revoked once the cache hears of it; a replayed answer fails closed', async () => {
    const ocsp = new OcspCache({ fetch: ocspFetcher() });
    const refused: Error[] = [];
    const { url } = await (async () => {
      const server = createMtlsServer({ source: createSvidSource(await svidFor(SERVER_ID)), authorize: [CLIENT_ID], revocation: ocsp, handler: (req, res) => res.end(mtlsPeer(req)?.spiffeId), onRefused: (err) => refused.push(err) });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      opened.push({ close: () => server.close() });
      return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/` };
    })();
    const clientSvid = await svidFor(CLIENT_ID);
    const client = createMtlsAgent({ source: createSvidSource(clientSvid), authorize: [SERVER_ID], revocation: new OcspCache({ fetch: ocspFetcher() }) });
    opened.push({ close: () => client.destroy() });
    expect(await get(url, client)).toBe(CLIENT_ID);

    expect((await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: admin, payload: { serial_number: clientSvid.serial } })).statusCode).toBe(200);
    ocsp.invalidate();
    const again = createMtlsAgent({ source: createSvidSource(clientSvid), authorize: [SERVER_ID], revocation: 'none' });
    opened.push({ close: () => again.destroy() });
    await expect(get(url, again)).rejects.toThrow();
    expect(refused.at(-1)?.message).toMatch(/revoked/);

    // An attacker replaying an earlier "good" answer (for the server's certificate) does not get past the nonce.
    let recorded: Uint8Array | undefined;
    const recorder = ocspFetcher();
    const honest = createMtlsAgent({ source: createSvidSource(await svidFor(CLIENT_ID)), authorize: [SERVER_ID], revocation: new OcspCache({ fetch: async (u, d) => (recorded = await recorder(u, d)) }) });
    opened.push({ close: () => honest.destroy() });
    expect(await get(url, honest)).toBe(CLIENT_ID);
    expect(recorded).toBeDefined();
    const fooled = createMtlsAgent({ source: createSvidSource(await svidFor(CLIENT_ID)), authorize: [SERVER_ID], revocation: new OcspCache({ fetch: async () => recorded! }) });
    opened.push({ close: () => fooled.destroy() });
    await expect(get(url, fooled)).rejects.toThrow(/nonce/);
  });

  it('fails closed when the CRL cannot be had', async () => {
    const broken = new CrlCache({ fetch: () => Promise.reject(new Error('unreachable')) });
    const refused: Error[] = [];
    const { url } = await serve(createSvidSource(await svidFor(SERVER_ID)), [CLIENT_ID], broken, refused);
    const client = createMtlsAgent({ source: createSvidSource(await svidFor(CLIENT_ID)), authorize: [SERVER_ID], revocation: 'none' });
    opened.push({ close: () => client.destroy() });
    await expect(get(url, client)).rejects.toThrow();
    expect(refused.at(-1)?.message).toMatch(/could not be fetched/);
  });

  it('keeps a keep-alive pool and fresh connections working across an intermediate rotation and an SVID rotation: zero failed requests', { timeout: 60_000 }, async () => {
    const crls = new CrlCache({ fetch: fetchCrl });
    const serverSource = createSvidSource(await svidFor(SERVER_ID));
    const clientSource = createSvidSource(await svidFor(CLIENT_ID));
    const { url, handshakes } = await serve(serverSource, [CLIENT_ID], crls);
    const pool = createMtlsAgent({ source: clientSource, authorize: [SERVER_ID], revocation: crls, agent: { keepAlive: true, maxSockets: 4 } });
    const oneShot = createMtlsAgent({ source: clientSource, authorize: [SERVER_ID], revocation: crls, agent: { keepAlive: false } });
    opened.push({ close: () => pool.destroy() }, { close: () => oneShot.destroy() });

    let ok = 0;
    const failures: Error[] = [];
    let running = true;
    const loop = async (agent: https.Agent) => {
      while (running) {
        try {
          expect(await get(url, agent)).toBe(CLIENT_ID);
          ok++;
        } catch (err) {
          failures.push(err as Error);
        }
      }
    };
    const loops = [loop(pool), loop(pool), loop(pool), loop(oneShot)];
    // Each phase lasts until the pool served more requests and the one-shot agent made new handshakes.
    const settle = async () => {
      const [requests, fresh] = [ok + 20, handshakes() + 3];
      while ((ok < requests || handshakes() < fresh) && failures.length === 0) await new Promise((r) => setTimeout(r, 5));
    };
    await settle();

    // 1. Intermediate rotation through the API: prepared, published, relying parties pick up the bundle ...
    const prepared = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: { propagation_delay: '10m' } });
    expect(prepared.statusCode, prepared.body).toBe(200);
    const published = await bundle();
    serverSource.update({ ...serverSource.current()!, bundlePem: published });
    clientSource.update({ ...clientSource.current()!, bundlePem: published });
    await settle();
    // ... then it signs, and both sides rotate onto SVIDs from the new intermediate (2: the SVID rotation).
    expect((await s.app.inject({ method: 'POST', url: '/v1/pki/ca/activate', headers: admin })).statusCode).toBe(200);
    const newServer = await svidFor(SERVER_ID);
    serverSource.update(newServer);
    await settle();
    clientSource.update(await svidFor(CLIENT_ID));
    await settle();
    expect(newServer.svidPem).not.toBe(published);

    running = false;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(80);
    expect(handshakes()).toBeGreaterThanOrEqual(15); // the one-shot agent handshook in every phase
  });
});
