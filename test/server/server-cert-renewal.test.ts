import 'reflect-metadata';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualScheduler } from '../../src/core/scheduler.js';
import { ManualClock } from '../../src/core/clock.js';
import { resolveServerConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import { buildApp } from '../../src/server/app.js';

/**
 * The server's own TLS certificate renews itself while the server runs: at two thirds of its
 * lifetime (the clock is moved, the scheduler runs what is due) and when an intermediate rotation
 * makes another CA the issuer. New handshakes get the new certificate, the files are replaced
 * (key 0600), and a keep-alive connection opened before the renewal keeps working.
 *
 * The clock starts 61 days in the past so that, once moved past the renewal point, certificates
 * are valid by the system time the TLS client checks them against.
 */

const DAY = 86_400_000;
const quiet = createLogger({ level: 'silent' });

interface Listening {
  runtime: Runtime;
  app: FastifyInstance;
  clock: ManualClock;
  scheduler: ManualScheduler;
  dataDir: string;
  url: string;
  admin: Record<string, string>;
}

const started: Listening[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) {
    await s.app.close();
    await s.runtime.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  }
});

async function start(dataDir = mkdtempSync(join(tmpdir(), 'rampart-cert-renewal-')), clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000 - 61 * DAY)): Promise<Listening> {
  const scheduler = new ManualScheduler(clock);
  const config = resolveServerConfig({ dataDir, logLevel: 'silent' }, {});
  const runtime = await startRuntime(config, { clock, logger: quiet, integrateEveryMs: 0, pruneEveryMs: 0, leaseExpiryEveryMs: 0, scheduler });
  const app = await buildApp(runtime, { https: { key: runtime.tls.keyPem, cert: runtime.tls.certPem, ca: runtime.trustBundlePem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const s = {
    runtime,
    app,
    clock,
    scheduler,
    dataDir,
    url: `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    admin: { authorization: `Bearer ${readFileSync(runtime.files.adminToken, 'utf8').trim()}` },
  };
  started.push(s);
  return s;
}

/** GET /v1/health through `agent`; the TLS socket it went over and the serial the server presented (lowercase hex). */
function health(s: Listening, agent: https.Agent | false): Promise<{ socket: TLSSocket; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${s.url}/v1/health`, { agent, ca: s.runtime.trustBundlePem }, (res) => {
      const socket = res.socket as TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber.toLowerCase();
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve({ socket, serial }) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

const leafOf = (pem: string) => new x509.X509Certificate(pem);

describe('server TLS certificate renewal', () => {
  it('renews at two thirds of its lifetime: new handshakes see the new certificate, a keep-alive connection keeps working', async () => {
    const s = await start();
    const first = s.runtime.tls.serialNumber;
    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1, ca: s.runtime.trustBundlePem });
    try {
      const before = await health(s, keepAlive);
      expect(before.serial).toBe(first);

      // Not yet due: nothing happens.
      s.clock.advance(59 * DAY);
      await s.scheduler.runDue();
      expect(s.runtime.tls.serialNumber).toBe(first);

      s.clock.advance(2 * DAY); // past 60 of 90 days
      await s.scheduler.runDue();
      const renewed = s.runtime.tls.serialNumber;
      expect(renewed).not.toBe(first);
      expect(leafOf(s.runtime.tls.certPem).notBefore.getTime()).toBeGreaterThan(s.clock.now().getTime() - 10 * 60_000); // issued now (less a skew allowance)

      // The files hold the new pair, replaced atomically (no temporary file left), the key 0600.
      expect(readFileSync(s.runtime.files.serverCert, 'utf8')).toBe(s.runtime.tls.certPem);
      expect(readFileSync(s.runtime.files.serverKey, 'utf8')).toBe(s.runtime.tls.keyPem);
      expect(statSync(s.runtime.files.serverKey).mode & 0o777).toBe(0o600);
      expect(readdirSync(join(s.dataDir, 'tls')).sort()).toEqual(['server-key.pem', 'server.pem']);

      expect((await health(s, false)).serial).toBe(renewed);
      // The connection pooled before the renewal is still open and still serves requests.
      const after = await health(s, keepAlive);
      expect(after.socket).toBe(before.socket);
      expect(after.serial).toBe(first);

      // The next renewal is scheduled from the new certificate.
      s.clock.advance(59 * DAY);
      await s.scheduler.runDue();
      expect(s.runtime.tls.serialNumber).toBe(renewed);
      s.clock.advance(2 * DAY);
      await s.scheduler.runDue();
      expect(s.runtime.tls.serialNumber).not.toBe(renewed);
    } finally {
      keepAlive.destroy();
    }
  });

  it('renews as soon as an intermediate rotation activates, under the new intermediate', async () => {
    const s = await start();
    const first = s.runtime.tls.serialNumber;
    const oldIssuer = s.runtime.ca.intermediate.certificate;
    const prepared = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: s.admin, payload: { propagation_delay: '10m' } });
    expect(prepared.statusCode, prepared.body).toBe(200);
    // A published but not yet signing intermediate changes the bundle, not the issuer: no renewal.
    expect(s.runtime.tls.serialNumber).toBe(first);

    const renewal = new Promise<void>((resolve) => s.runtime.tls.onRenew(resolve));
    expect((await s.app.inject({ method: 'POST', url: '/v1/pki/ca/activate', headers: s.admin })).statusCode).toBe(200);
    await renewal;
    const leaf = leafOf(s.runtime.tls.certPem);
    const newIssuer = s.runtime.ca.intermediate.certificate;
    expect(newIssuer.serialNumber).not.toBe(oldIssuer.serialNumber);
    expect(await leaf.verify({ publicKey: newIssuer.publicKey, signatureOnly: true })).toBe(true);
    expect((await health(s, false)).serial).toBe(s.runtime.tls.serialNumber);
    expect(s.runtime.tls.serialNumber).not.toBe(first);
  });

  it('reuses the stored certificate on restart, and replaces a pair whose key is not the certificate’s', async () => {
    const s = await start();
    const { dataDir, clock } = s;
    const serial = s.runtime.tls.serialNumber;
    const keyPem = s.runtime.tls.keyPem;
    await s.app.close();
    await s.runtime.close();
    started.splice(0);

    const again = await start(dataDir, clock);
    expect(again.runtime.tls.serialNumber).toBe(serial);
    expect(again.runtime.tls.keyPem).toBe(keyPem);
    await again.app.close();
    await again.runtime.close();
    started.splice(0);

    // A crash between the two renames leaves a new key next to the old certificate.
    const other = await startRuntime(resolveServerConfig({ dataDir: mkdtempSync(join(tmpdir(), 'rampart-cert-other-')), logLevel: 'silent' }, {}), { clock, logger: quiet, integrateEveryMs: 0, pruneEveryMs: 0, leaseExpiryEveryMs: 0, scheduler: new ManualScheduler(clock) });
    writeFileSync(again.runtime.files.serverKey, other.tls.keyPem, { mode: 0o600 });
    await other.close();
    rmSync(other.config.dataDir, { recursive: true, force: true });
    const repaired = await start(dataDir, clock);
    expect(repaired.runtime.tls.serialNumber).not.toBe(serial);
    expect((await health(repaired, false)).serial).toBe(repaired.runtime.tls.serialNumber);
  });
});
