import 'reflect-metadata';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { resolveServerConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { PkiEventHub, type PkiEvent } from '../../src/pki/events.js';
import { PkiReplicaSync } from '../../src/pki/replica-sync.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import { buildApp } from '../../src/server/app.js';
import { makeCsr } from '../support/pki.js';
import { startTestServer } from '../support/server.js';
import { createThrowawayDatabase } from '../support/throwaway-database.js';

/**
 * Several replicas on one PostgreSQL store (issue 3): a revocation made on replica A reaches the
 * event-stream subscribers of replica B exactly once, B's OCSP answers `revoked` and B's CRL lists
 * it, all within 5 s; a rotation made on A moves B's bundle, event stream and TLS listener. Two
 * real runtimes, each with its own HTTPS listener, on one throwaway database. The deadlines are
 * upper bounds polled for, never waited out.
 */

const PG_URL = process.env.RAMPART_TEST_DATABASE_URL;
/** The bound on how stale another replica may be. */
const BOUND_MS = 5_000;
const within = { timeout: BOUND_MS, interval: 25 };
const ID = 'spiffe://default.rampart.local/ns/pay/sa/api';

interface Replica {
  readonly runtime: Runtime;
  readonly app: FastifyInstance;
  readonly addr: string;
  readonly dataDir: string;
}

async function startReplica(url: string, clock: ManualClock, first?: Replica): Promise<Replica> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-replica-'));
  // Replicas share the store; the unseal key file is what an operator copies to the second one.
  if (first) copyFileSync(first.runtime.files.unsealKey, join(dataDir, 'unseal.key'));
  const config = resolveServerConfig({ dataDir, databaseUrl: url, logLevel: 'silent' }, {});
  const runtime = await startRuntime(config, { clock, logger: createLogger({ level: 'silent' }), integrateEveryMs: 0, pruneEveryMs: 0, pkiPollEveryMs: 500 });
  const app = await buildApp(runtime, {
    https: { key: runtime.tls.keyPem, cert: runtime.tls.certPem, ca: runtime.trustBundlePem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return { runtime, app, dataDir, addr: `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

/** Follows `GET /v1/pki/events` over HTTPS, as an agent does; collects the events it receives. */
function subscribe(replica: Replica, token: string): { events: PkiEvent[]; close(): void } {
  const events: PkiEvent[] = [];
  let buffer = '';
  const req = httpsRequest(`${replica.addr}/v1/pki/events`, { headers: { authorization: `Bearer ${token}` }, ca: replica.runtime.trustBundlePem }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (data) events.push(JSON.parse(data.slice('data: '.length)) as PkiEvent);
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { events, close: () => req.destroy() };
}

/** Sends an mTLS-only request (no token) to `replica` with `cert`/`key`, trusting `caPem`; resolves the HTTP status. */
function mtlsStatus(replica: Replica, certPem: string, keyPem: string, caPem: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${replica.addr}/v1/tokens/self`, { cert: certPem, key: keyPem, ca: caPem, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

const revokedSerials = (events: readonly PkiEvent[]) => events.flatMap((e) => (e.type === 'revoked' ? e.serial_numbers : []));

describe.skipIf(!PG_URL)('PKI across two replicas on one PostgreSQL store', () => {
  let drop: () => Promise<void>;
  let url: string;
  let a: Replica;
  let b: Replica;
  let token: string;
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const admin = () => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    ({ url, drop } = await createThrowawayDatabase(PG_URL!));
    a = await startReplica(url, clock);
    b = await startReplica(url, clock, a);
    token = readFileSync(a.runtime.files.adminToken, 'utf8').trim();
  });
  afterAll(async () => {
    for (const r of [b, a]) {
      if (!r) continue;
      await r.app.close();
      await r.runtime.close();
      rmSync(r.dataDir, { recursive: true, force: true });
    }
    await drop?.();
  });

  const sign = async (on: Replica, csrPem?: string) => {
    const r = await on.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: admin(), payload: { csr: csrPem ?? (await makeCsr()).pem, spiffe_id: ID, ttl: '10m' } });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as { certificate: string; issuing_ca: string; ca_chain: string[]; serial_number: string };
  };
  const revoke = async (on: Replica, serial: string) => {
    const r = await on.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: admin(), payload: { serial_number: serial, reason: 'keyCompromise' } });
    expect(r.statusCode, r.body).toBe(200);
  };
  const ocspStatus = async (on: Replica, signed: { certificate: string; issuing_ca: string }): Promise<number> => {
    const request = new pkijs.OCSPRequest();
    await request.createForCertificate(pkijs.Certificate.fromBER(new x509.X509Certificate(signed.certificate).rawData), {
      hashAlgorithm: 'SHA-256',
      issuerCertificate: pkijs.Certificate.fromBER(new x509.X509Certificate(signed.issuing_ca).rawData),
    });
    const r = await on.app.inject({ method: 'POST', url: '/v1/pki/ocsp', headers: { 'content-type': 'application/ocsp-request' }, payload: Buffer.from(request.toSchema(true).toBER()) });
    const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(r.rawPayload).responseBytes!.response.valueBlock.valueHexView);
    return basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber; // 0 good, 1 revoked
  };
  const crlSerials = async (on: Replica, path = '/v1/pki/crl') =>
    new x509.X509Crl((await on.app.inject({ method: 'GET', url: path })).rawPayload).entries.map((e) => e.serialNumber.toLowerCase().replace(/^0+/, ''));
  const bare = (serial: string) => serial.replace(/^0+/, '');

  it('a revocation on A reaches B: its event stream once, its OCSP, its CRL and delta CRL', async () => {
    const onB = subscribe(b, token);
    const onA = subscribe(a, token);
    try {
      await vi.waitFor(() => expect(b.runtime.pkiEvents.subscribers + a.runtime.pkiEvents.subscribers).toBe(2), within);
      const first = await sign(a);
      const second = await sign(a);
      // B has answered before: its OCSP and CRL caches hold the `good` state.
      expect(await ocspStatus(b, first)).toBe(0);
      expect(await crlSerials(b)).not.toContain(bare(first.serial_number));
      await b.app.inject({ method: 'GET', url: '/v1/pki/crl/delta' });

      await revoke(a, first.serial_number);
      await vi.waitFor(() => expect(revokedSerials(onB.events)).toContain(first.serial_number), within);
      await vi.waitFor(async () => expect(await ocspStatus(b, first)).toBe(1), within);
      await vi.waitFor(async () => expect(await crlSerials(b)).toContain(bare(first.serial_number)), within);
      await vi.waitFor(async () => expect(await crlSerials(b, '/v1/pki/crl/delta')).toContain(bare(first.serial_number)), within);

      // A second revocation, made on B this time: once it has arrived everywhere, anything the
      // first could have been delivered twice by (NOTIFY, poll, local delivery) has run too.
      await revoke(b, second.serial_number);
      for (const stream of [onA, onB]) {
        await vi.waitFor(() => expect(revokedSerials(stream.events)).toContain(second.serial_number), within);
        expect(revokedSerials(stream.events).filter((s) => s === first.serial_number)).toHaveLength(1);
        expect(revokedSerials(stream.events).filter((s) => s === second.serial_number)).toHaveLength(1);
      }
      expect(await ocspStatus(a, second)).toBe(1);
    } finally {
      onA.close();
      onB.close();
    }
  });

  it('a lost LISTEN connection is re-opened and what was revoked meanwhile still arrives once', async () => {
    const onB = subscribe(b, token);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await vi.waitFor(() => expect(b.runtime.pkiEvents.subscribers).toBe(1), within);
      const listeners = async () => Number((await admin.query(`select count(*) as n from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%'`)).rows[0].n);
      await vi.waitFor(async () => expect(await listeners()).toBe(2), within);
      const signed = await sign(a);
      // Cut every listening session (both replicas), then revoke before they are back.
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%'`);
      await revoke(a, signed.serial_number);
      await vi.waitFor(() => expect(revokedSerials(onB.events)).toContain(signed.serial_number), within);
      await vi.waitFor(async () => expect(await listeners()).toBe(2), within);
      expect(revokedSerials(onB.events).filter((s) => s === signed.serial_number)).toHaveLength(1);
    } finally {
      onB.close();
      await admin.end();
    }
  });

  it('without any notification, the poll alone delivers within the bound', async () => {
    const hub = new PkiEventHub();
    const seen: PkiEvent[] = [];
    hub.subscribe('default', (e) => seen.push(e));
    const sync = await PkiReplicaSync.open({ hub, log: b.runtime.stores.pkiEvents, ca: b.runtime.ca, stores: b.runtime.stores, transact: b.runtime.transact, clock, onError: () => undefined });
    sync.follow(undefined, 200);
    try {
      const signed = await sign(a);
      await revoke(a, signed.serial_number);
      await vi.waitFor(() => expect(revokedSerials(seen)).toEqual([signed.serial_number]), within);
    } finally {
      await sync.close();
    }
  });

  it('a root rotation on A moves B: bundle, event stream, signing intermediate and the TLS listener', async () => {
    const onB = subscribe(b, token);
    try {
      await vi.waitFor(() => expect(b.runtime.pkiEvents.subscribers).toBe(1), within);
      const sequence = b.runtime.ca.sequence;
      const rotated = await a.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin(), payload: { target: 'root', propagation_delay: '10m' } });
      expect(rotated.statusCode, rotated.body).toBe(200);
      const activated = await a.app.inject({ method: 'POST', url: '/v1/pki/ca/activate', headers: admin() });
      expect(activated.statusCode, activated.body).toBe(200);
      const newIntermediate = a.runtime.ca.intermediate.certificate;

      // B's view, without any request to B: the hierarchy, the event stream, the bundle.
      await vi.waitFor(() => expect(b.runtime.ca.intermediate.certificate.equal(newIntermediate)).toBe(true), within);
      expect(b.runtime.ca.sequence).toBeGreaterThanOrEqual(sequence + 2);
      await vi.waitFor(() => expect(onB.events.filter((e) => e.type === 'bundle').length).toBeGreaterThan(0), within);
      const bundle = (await b.app.inject({ method: 'GET', url: '/v1/pki/ca/pem' })).body;
      expect(bundle).toContain(newIntermediate.toString('pem').split('\n')[1]);

      // A workload SVID from the new intermediate, under the new root: B's listener accepts it
      // (the request is authenticated by the certificate alone: 200, not 401 untrusted).
      const csr = await makeCsr();
      const svid = await sign(a, csr.pem);
      expect(new x509.X509Certificate(svid.issuing_ca).equal(newIntermediate)).toBe(true);
      // Leaf and intermediate only: no cross-certificate, so the path must end at the new root.
      const chain = `${svid.certificate.trim()}\n${svid.issuing_ca.trim()}\n`;
      expect(await mtlsStatus(a, chain, csr.keyPem, bundle)).not.toBe(401);
      // The server's own certificate may have moved to the new intermediate: trust the whole bundle.
      await vi.waitFor(async () => expect(await mtlsStatus(b, chain, csr.keyPem, bundle)).not.toBe(401), within);
      // And B signs with the new intermediate too.
      expect(new x509.X509Certificate((await sign(b)).issuing_ca).equal(newIntermediate)).toBe(true);
    } finally {
      onB.close();
    }
  });
});

describe('PKI events on SQLite (one process)', () => {
  it('delivers its own revocations once, after they commit, and nothing for a revocation that changes nothing', async () => {
    const s = await startTestServer();
    try {
      const seen: PkiEvent[] = [];
      const unsubscribe = s.runtime.pkiEvents.subscribe('default', (e) => seen.push(e));
      const other: PkiEvent[] = [];
      s.runtime.pkiEvents.subscribe('acme', (e) => other.push(e));
      const headers = { authorization: `Bearer ${s.adminToken}` };
      const signed = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers, payload: { csr: (await makeCsr()).pem, spiffe_id: ID, ttl: '10m' } });
      const serial = (signed.json() as { serial_number: string }).serial_number;
      for (let i = 0; i < 2; i++) {
        const r = await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers, payload: { serial_number: serial } });
        expect(r.statusCode).toBe(200);
      }
      // Delivered before the response: no waiting.
      expect(seen).toEqual([{ type: 'revoked', serial_numbers: [serial], spiffe_id: null, revoked_at: expect.any(String) as string }]);
      const byId = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers, payload: { csr: (await makeCsr()).pem, spiffe_id: ID, ttl: '10m' } });
      await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers, payload: { spiffe_id: ID, reason: 'superseded' } });
      expect(seen[1]).toMatchObject({ type: 'revoked', spiffe_id: ID, serial_numbers: expect.arrayContaining([(byId.json() as { serial_number: string }).serial_number]) as string[] });
      expect(seen).toHaveLength(2);
      // Another tenant's subscribers hear nothing of it.
      expect(other).toEqual([]);
      unsubscribe();
    } finally {
      await s.close();
    }
  });
});
