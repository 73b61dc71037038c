import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { type Dispatcher, fetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { chainPem, createIntermediateCa, createRootCa, issueSvid } from '../../src/pki/ca.js';
import { canonicalSerial } from '../../src/pki/issuer.js';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { createMtlsDispatcher, createMtlsServer, createSvidSource, CrlCache, type MtlsDispatcherOptions, mtlsPeer, OcspCache, type PushSvidSource, SvidError, type SvidMaterial } from '../../src/sdk/index.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { bundleOf, revokeSerial, svidFrom } from '../support/svid.js';

/**
 * createMtlsDispatcher with undici's request and fetch against real TLS and SVIDs issued by a
 * real control plane: which servers it accepts (allow-list, callback, revocation by CRL and OCSP,
 * failing closed), which it refuses (a foreign CA, a certificate of our CA that is not an SVID),
 * and the rotation test: a stream of pooled and fresh-connection requests sees zero failures while
 * the intermediate CA and the client's SVID rotate, and pooled connections outlive the rotation.
 */

const SERVER_ID = 'spiffe://default.rampart.local/ns/pay/sa/api';
const CLIENT_ID = 'spiffe://default.rampart.local/ns/web/sa/frontend';

describe('createMtlsDispatcher', () => {
  let s: TestServer;
  let admin: Record<string, string>;
  const opened: { close(): unknown }[] = [];

  beforeAll(async () => {
    s = await startTestServer({ listen: true, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
    admin = { authorization: `Bearer ${s.adminToken}` };
  });
  afterAll(async () => {
    for (const o of opened) await o.close();
    await s?.close();
  });

  const bundle = () => bundleOf(s);
  const svidFor = (id: string) => svidFrom(s, id);
  const revoke = (serial: string) => revokeSerial(s, serial);
  /** The SVIDs name the advertised address; CRL and OCSP requests go to the in-process server. */
  const fetchCrl = async (url: string) => {
    const r = await s.app.inject({ method: 'GET', url: new URL(url).pathname });
    if (r.statusCode !== 200) throw new Error(`CRL: HTTP ${r.statusCode}`);
    return r.rawPayload;
  };
  const fetchOcsp = async (url: string, der: Uint8Array) =>
    (await s.app.inject({ method: 'POST', url: new URL(url).pathname, headers: { 'content-type': 'application/ocsp-request' }, payload: Buffer.from(der) })).rawPayload;

  /** An mTLS server answering `<client SPIFFE ID> <client leaf serial>`; `/close` also closes the connection. */
  async function serve(source: PushSvidSource): Promise<{ server: tls.Server; url: string; handshakes: () => number; handled: () => number }> {
    let handshakes = 0;
    let handled = 0;
    const server = createMtlsServer({
      source,
      authorize: [CLIENT_ID],
      revocation: new CrlCache({ fetch: fetchCrl }),
      handler: (req, res) => {
        handled++;
        const peer = mtlsPeer(req);
        if (req.url === '/close') res.setHeader('connection', 'close');
        // Canonical, as issued: the parsed certificate drops the 00 a serial with its high bit set carries.
        res.end(`${peer?.spiffeId} ${canonicalSerial(peer?.path[0]?.serialNumber ?? '')}`);
      },
    });
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    opened.push({ close: () => server.close() });
    return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, handshakes: () => handshakes, handled: () => handled };
  }

  const dispatcherFor = (options: Partial<MtlsDispatcherOptions> & Pick<MtlsDispatcherOptions, 'source'>) => {
    const dispatcher = createMtlsDispatcher({ authorize: [SERVER_ID], revocation: new CrlCache({ fetch: fetchCrl }), ...options });
    opened.push({ close: () => dispatcher.destroy() });
    return dispatcher;
  };
  const get = async (url: string, dispatcher: Dispatcher) => {
    const res = await request(url, { dispatcher });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    return text;
  };
  /** The SvidError a refused request failed with (undici's fetch wraps it as `cause`). */
  const refusal = async (p: Promise<unknown>): Promise<SvidError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    const found = err instanceof SvidError ? err : (err as { cause?: unknown } | undefined)?.cause;
    expect(found, String(err)).toBeInstanceOf(SvidError);
    return found as SvidError;
  };

  let serverSvid: SvidMaterial & { serial: string };
  let clientSvid: SvidMaterial & { serial: string };
  let target: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    serverSvid = await svidFor(SERVER_ID);
    clientSvid = await svidFor(CLIENT_ID);
    target = await serve(createSvidSource(serverSvid));
  });

  it('accepts a server on the allow-list with undici.request and undici.fetch, and refuses one that is not', async () => {
    const dispatcher = dispatcherFor({ source: createSvidSource(clientSvid) });
    expect(await get(`${target.url}/`, dispatcher)).toBe(`${CLIENT_ID} ${clientSvid.serial}`);
    const res = await fetch(`${target.url}/`, { dispatcher });
    expect(await res.text()).toBe(`${CLIENT_ID} ${clientSvid.serial}`);

    const refused: Error[] = [];
    const handled = target.handled();
    const picky = dispatcherFor({ source: createSvidSource(clientSvid), authorize: ['spiffe://default.rampart.local/ns/pay/sa/other'], onRefused: (e) => refused.push(e) });
    expect((await refusal(get(`${target.url}/`, picky))).message).toMatch(/not authorized/);
    expect((await refusal(fetch(`${target.url}/`, { dispatcher: picky }))).message).toMatch(/not authorized/);
    expect(refused).toHaveLength(2);
    // No request reached the server over the refused connections.
    expect(target.handled()).toBe(handled);
  });

  it('lets a callback decide, and refuses plain http: rather than connecting without an SVID', async () => {
    const seen: string[] = [];
    const yes = dispatcherFor({ source: createSvidSource(clientSvid), authorize: (id) => (seen.push(id), id.startsWith('spiffe://default.rampart.local/ns/pay/')) });
    expect(await get(`${target.url}/`, yes)).toBe(`${CLIENT_ID} ${clientSvid.serial}`);
    expect(seen).toEqual([SERVER_ID]);
    const no = dispatcherFor({ source: createSvidSource(clientSvid), authorize: () => false });
    expect((await refusal(get(`${target.url}/`, no))).code).toBe('svid.forbidden');
    expect((await refusal(get(target.url.replace('https:', 'http:'), yes))).message).toMatch(/only connects to https/);
  });

  it('refuses a server whose CA it does not trust, and a certificate of its own CA that is not an SVID', async () => {
    const clock = new ManualClock(Date.now());
    const foreignRoot = await createRootCa({ commonName: 'Rampart Root', clock }); // a look-alike name, another key
    const foreignIntermediate = await createIntermediateCa(foreignRoot, { commonName: 'Rampart Intermediate', clock });
    const keys = await generateKeyPair();
    const leaf = await issueSvid(foreignIntermediate, { publicKey: keys.publicKey, spiffeId: parseSpiffeId(SERVER_ID).id, clock, ttlMs: 3_600_000 });
    const impostor = await serve(createSvidSource({ svidPem: chainPem(leaf, foreignIntermediate.certificate), keyPem: await exportPrivateKeyPkcs8Pem(keys.privateKey), bundlePem: chainPem(foreignRoot.certificate) }));
    const dispatcher = dispatcherFor({ source: createSvidSource(clientSvid) });
    // OpenSSL refuses the chain during the handshake.
    await expect(get(`${impostor.url}/`, dispatcher)).rejects.toThrow(/certificate/);
    expect(impostor.handled()).toBe(0);

    // The control plane's own TLS certificate chains to the same roots but names no SPIFFE ID.
    const err = await refusal(get(`${s.addr}/v1/health`, dispatcher));
    expect(err.code).toBe('svid.malformed');
  });

  it('refuses a revoked server by CRL and by OCSP, and fails closed when neither can be had', async () => {
    const revokedSvid = await svidFor(SERVER_ID);
    const revokedServer = await serve(createSvidSource(revokedSvid));
    const crls = new CrlCache({ fetch: fetchCrl });
    const ocsp = new OcspCache({ fetch: fetchOcsp });
    const byCrl = dispatcherFor({ source: createSvidSource(clientSvid), revocation: crls });
    const byOcsp = dispatcherFor({ source: createSvidSource(clientSvid), revocation: ocsp, agent: { pipelining: 0 } });
    expect(await get(`${revokedServer.url}/`, byCrl)).toContain(CLIENT_ID);
    expect(await get(`${revokedServer.url}/`, byOcsp)).toContain(CLIENT_ID);

    await revoke(revokedSvid.serial);
    crls.invalidate();
    ocsp.invalidate();
    // New connections (fresh dispatchers sharing the caches) hear of it.
    expect((await refusal(get(`${revokedServer.url}/`, dispatcherFor({ source: createSvidSource(clientSvid), revocation: crls })))).code).toBe('svid.revoked');
    expect((await refusal(get(`${revokedServer.url}/`, dispatcherFor({ source: createSvidSource(clientSvid), revocation: ocsp })))).code).toBe('svid.revoked');

    const unreachable = () => Promise.reject(new Error('connect ECONNREFUSED'));
    for (const revocation of [new CrlCache({ fetch: unreachable }), new OcspCache({ fetch: unreachable })]) {
      const err = await refusal(get(`${target.url}/`, dispatcherFor({ source: createSvidSource(clientSvid), revocation })));
      expect(err.code).toBe('svid.revocation_unavailable');
    }
    // Revocation checking is on by default: a dispatcher given nothing fetches the CRL itself over
    // HTTPS from the advertised address, which does not answer here, so it refuses.
    const defaults = createMtlsDispatcher({ source: createSvidSource(clientSvid), authorize: [SERVER_ID] });
    opened.push({ close: () => defaults.destroy() });
    expect((await refusal(get(`${target.url}/`, defaults))).code).toBe('svid.revocation_unavailable');
  });

  it('serves a stream of requests with zero failures across an intermediate rotation and an SVID rotation; pooled connections survive', { timeout: 60_000 }, async () => {
    const serverSource = createSvidSource(await svidFor(SERVER_ID));
    const first = await svidFor(CLIENT_ID);
    const clientSource = createSvidSource(first);
    const { url, handshakes } = await serve(serverSource);
    // One dispatcher keeps two pooled connections busy; the other opens a new connection per request.
    const pooled = dispatcherFor({ source: clientSource, agent: { connections: 2 } });
    const oneShot = dispatcherFor({ source: clientSource });

    const seen: { path: string; serial: string; at: number }[] = [];
    const failures: unknown[] = [];
    let phase = 0;
    let running = true;
    const loop = async (path: string, dispatcher: Dispatcher) => {
      while (running) {
        try {
          const body = await get(`${url}${path}`, dispatcher);
          const [id, serial] = body.split(' ');
          expect(id).toBe(CLIENT_ID);
          seen.push({ path, serial: serial!, at: phase });
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const loops = [loop('/keep', pooled), loop('/keep', pooled), loop('/close', oneShot)];
    const count = (path: string, at: number, serial?: string) => seen.filter((r) => r.path === path && r.at === at && (serial === undefined || r.serial === serial)).length;
    const settle = async (check: () => boolean) => {
      const fresh = handshakes() + 3;
      while ((!check() || handshakes() < fresh) && failures.length === 0) await new Promise((r) => setTimeout(r, 5));
    };
    await settle(() => count('/keep', 0) >= 20);

    // 1. The intermediate rotates: prepared and published, both sides take up the new bundle ...
    const prepared = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: { propagation_delay: '10m' } });
    expect(prepared.statusCode, prepared.body).toBe(200);
    const published = await bundle();
    phase = 1;
    serverSource.update({ ...serverSource.current()!, bundlePem: published });
    clientSource.update({ ...clientSource.current()!, bundlePem: published });
    await settle(() => count('/keep', 1) >= 20);
    // ... then signs, and the server and the client rotate onto SVIDs from the new intermediate.
    expect((await s.app.inject({ method: 'POST', url: '/v1/pki/ca/activate', headers: admin })).statusCode).toBe(200);
    phase = 2;
    serverSource.update(await svidFor(SERVER_ID));
    await settle(() => count('/keep', 2) >= 20);
    const second = await svidFor(CLIENT_ID);
    phase = 3;
    clientSource.update(second);
    await settle(() => count('/close', 3, second.serial) >= 3 && count('/keep', 3) >= 20);

    running = false;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    // New connections present the new SVID at once ...
    expect(count('/close', 3, second.serial)).toBeGreaterThanOrEqual(3);
    // ... while the connections pooled before the rotation keep serving requests with the old one.
    expect(count('/keep', 3)).toBeGreaterThanOrEqual(20);
    expect(count('/keep', 3, first.serial)).toBe(count('/keep', 3));
  });
});
