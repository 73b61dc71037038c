import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RampartAgent } from '../../src/agent/agent.js';
import { ManualScheduler } from '../../src/core/scheduler.js';
import { ManualClock } from '../../src/core/clock.js';
import { watchX509Svid, type X509SvidUpdate, type X509SvidWatch } from '../../src/sdk/index.js';
import { TEST_DATABASES } from '../support/databases.js';
import { runTool } from '../support/processes.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * `rampart agent` end to end against a listening control plane: it attests with a join token,
 * writes each entry's svid.pem / key.pem (0600) / bundle.pem, which openssl verifies as a strict
 * TLS client certificate; it rotates at half-life when its clock gets there (and not before),
 * replacing the files atomically and pushing the new SVID to socket subscribers; and a revocation
 * announced on /v1/pki/events reaches the subscriber and is answered with a fresh SVID.
 *
 * The agent has its own manual clock: the server's stays at the real time, because TLS checks
 * the client certificate's validity against the real time.
 */
const TD = 'spiffe://default.rampart.local';

describe.each(TEST_DATABASES)('rampart agent ($name)', (database) => {
  let s: TestServer;
  let dir: string;
  let agent: RampartAgent;
  let clock: ManualClock;
  let scheduler: ManualScheduler;
  let entryId: string;
  let otherAgentsEntry: string;
  const admin = () => ({ authorization: `Bearer ${s.adminToken}` });

  beforeAll(async () => {
    s = await startTestServer({ database, listen: true, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-'));
    const token = (await s.app.inject({ method: 'POST', url: '/v1/pki/agent/tokens', headers: admin(), payload: { ttl: '10m' } })).json() as { token: string; spiffe_id: string };
    const register = async (parent: string, spiffeId: string) =>
      ((await s.app.inject({ method: 'POST', url: '/v1/pki/registrations', headers: admin(), payload: { spiffe_id: spiffeId, parent, selectors: ['unix:uid:1000'], ttl: '10m' } })).json() as { id: string }).id;
    entryId = await register(token.spiffe_id, `${TD}/ns/pay/sa/api`);
    otherAgentsEntry = await register(`${TD}/rampart/agent/join_token/jt_someoneelse0000`, `${TD}/ns/pay/sa/db`);
    clock = new ManualClock(s.clock.now());
    scheduler = new ManualScheduler(clock);
    agent = new RampartAgent({ server: s.addr!, caPem: s.runtime.trustBundlePem, dir, attestation: { joinToken: token.token }, clock, scheduler, random: () => 0.5 });
    await agent.start();
  });
  afterAll(async () => {
    await agent?.stop();
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const files = (id: string) => ({ svid: join(dir, id, 'svid.pem'), key: join(dir, id, 'key.pem'), bundle: join(dir, id, 'bundle.pem') });
  const leafOf = (path: string) => new x509.X509Certificate(readFileSync(path, 'utf8'));

  it('writes the SVIDs of its own entries only, with the key readable by the owner alone', async () => {
    expect(agent.entries().map((e) => e.id)).toEqual([entryId]);
    const f = files(entryId);
    expect(statSync(f.key).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, entryId)).mode & 0o777).toBe(0o700);
    const leaf = leafOf(f.svid);
    expect(leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => n.value)).toEqual([`${TD}/ns/pay/sa/api`]);
    // The key on disk is the certificate's.
    const key = await crypto.subtle.importKey('pkcs8', Buffer.from(readFileSync(f.key, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64'), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
    const jwk = await crypto.subtle.exportKey('jwk', key);
    const pub = await crypto.subtle.exportKey('jwk', await leaf.publicKey.export());
    expect([jwk.x, jwk.y]).toEqual([pub.x, pub.y]);
    expect(readFileSync(f.bundle, 'utf8')).toContain(s.runtime.ca.roots[0]!.toString('pem').split('\n')[1]);
    expect(() => statSync(join(dir, otherAgentsEntry))).toThrow();
  });

  it('gives the entry to the user its unix:uid selector names when it runs as root', () => {
    const root = process.getuid?.() === 0;
    const status = agent.entries()[0]!;
    for (const path of [status.dir, files(entryId).key, files(entryId).svid, status.socketPath]) expect(statSync(path).uid, path).toBe(root ? 1000 : process.getuid?.());
    // The agent's own identity stays the agent's.
    expect(statSync(join(dir, 'agent', 'key.pem')).uid).toBe(process.getuid?.());
  });

  it('issues what openssl verify -x509_strict -purpose sslclient accepts with the bundle, for entries and the agent itself', async () => {
    for (const d of [entryId, 'agent']) {
      const f = files(d);
      const r = await runTool('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', f.bundle, '-untrusted', f.svid, f.svid]);
      expect(r.stdout + r.stderr, d).toContain(': OK');
      expect(r.status).toBe(0);
    }
  });

  it('rotates at half-life with jitter, not before; replaces files atomically and pushes to subscribers', async () => {
    const updates: X509SvidUpdate[] = [];
    const status = agent.entries()[0]!;
    const watch: X509SvidWatch = watchX509Svid(status.socketPath, (u) => updates.push(u));
    try {
      await vi.waitFor(() => expect(updates).toHaveLength(1));
      expect(updates[0]!.svidPem).toBe(readFileSync(files(entryId).svid, 'utf8'));
      const leaf = leafOf(files(entryId).svid);
      const life = leaf.notAfter.getTime() - leaf.notBefore.getTime();
      // random() = 0.5: half-life less half of the 10% jitter.
      expect(status.rotateAt.getTime()).toBe(leaf.notBefore.getTime() + Math.floor(life * 0.45));
      const inode = statSync(files(entryId).svid).ino;

      clock.set(new Date(status.rotateAt.getTime() - 1000));
      await scheduler.runDue();
      expect(agent.entries()[0]!.serialNumber).toBe(status.serialNumber);

      clock.set(status.rotateAt);
      await scheduler.runDue();
      const rotated = agent.entries()[0]!;
      expect(rotated.serialNumber).not.toBe(status.serialNumber);
      expect(leafOf(files(entryId).svid).serialNumber).not.toBe(leaf.serialNumber);
      // rename(2) over the old file: a new inode, and no temporary file left behind.
      expect(statSync(files(entryId).svid).ino).not.toBe(inode);
      expect(readFileSync(join(dir, entryId, 'key.pem'), 'utf8')).toContain('PRIVATE KEY');
      expect(statSync(files(entryId).key).mode & 0o777).toBe(0o600);
      await vi.waitFor(() => expect(updates).toHaveLength(2));
      expect(updates[1]!.svidPem).toBe(readFileSync(files(entryId).svid, 'utf8'));
      expect(updates[1]!.keyPem).toBe(readFileSync(files(entryId).key, 'utf8'));
    } finally {
      watch.close();
    }
  });

  it('forwards a revocation from /v1/pki/events to subscribers and replaces the revoked SVID', async () => {
    const before = agent.entries()[0]!;
    const revoked: string[][] = [];
    const updates: X509SvidUpdate[] = [];
    const watch = watchX509Svid(before.socketPath, (u) => updates.push(u), { onRevoked: (serials) => revoked.push([...serials]) });
    try {
      await vi.waitFor(() => expect(updates).toHaveLength(1));
      await vi.waitFor(() => expect(s.runtime.pkiEvents.subscribers).toBeGreaterThan(0));
      const r = await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: admin(), payload: { serial_number: before.serialNumber, reason: 'keyCompromise' } });
      expect(r.statusCode).toBe(200);
      await vi.waitFor(() => expect(revoked).toEqual([[before.serialNumber]]));
      await vi.waitFor(() => expect(updates).toHaveLength(2));
      expect(agent.entries()[0]!.serialNumber).not.toBe(before.serialNumber);
    } finally {
      watch.close();
    }
  });

  it('rewrites bundle.pem and pushes it when the trust bundle changes, keeping the SVID', async () => {
    const before = agent.entries()[0]!;
    const updates: X509SvidUpdate[] = [];
    const watch = watchX509Svid(before.socketPath, (u) => updates.push(u));
    try {
      await vi.waitFor(() => expect(updates).toHaveLength(1));
      const inode = statSync(files(entryId).bundle).ino;
      s.runtime.pkiEvents.bundleChanged(s.clock.now());
      await vi.waitFor(() => expect(updates).toHaveLength(2));
      expect(statSync(files(entryId).bundle).ino).not.toBe(inode);
      expect(updates[1]!.bundlePem).toBe(readFileSync(files(entryId).bundle, 'utf8'));
      expect(agent.entries()[0]!.serialNumber).toBe(before.serialNumber);
    } finally {
      watch.close();
    }
  });

  it('picks up new entries and drops deleted ones on the next sync', async () => {
    const added = ((await s.app.inject({ method: 'POST', url: '/v1/pki/registrations', headers: admin(), payload: { spiffe_id: `${TD}/ns/web`, parent: agent.spiffeId, selectors: ['unix:uid:33'] } })).json() as { id: string }).id;
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/pki/registrations/${entryId}`, headers: admin() })).statusCode).toBe(204);
    clock.advance(30_000);
    await scheduler.runDue();
    expect(agent.entries().map((e) => e.id)).toEqual([added]);
    expect(() => statSync(join(dir, entryId))).toThrow();
    expect(leafOf(files(added).svid).notAfter.getTime()).toBeGreaterThan(s.clock.now().getTime());
  });

  it('renews its own SVID over mTLS at half-life and keeps working with the new one', async () => {
    const own = leafOf(join(dir, 'agent', 'svid.pem'));
    const before = agent.ownSerialNumber;
    const life = own.notAfter.getTime() - own.notBefore.getTime();
    clock.set(new Date(own.notBefore.getTime() + Math.floor(life * 0.45)));
    await scheduler.runDue();
    expect(agent.ownSerialNumber).not.toBe(before);
    expect(leafOf(join(dir, 'agent', 'svid.pem')).serialNumber).not.toBe(own.serialNumber);
    await agent.sync();
    expect(agent.entries()).toHaveLength(1);
  });

  it('resumes with its kept SVID after a restart instead of attesting again (the join token is spent)', async () => {
    const again = new RampartAgent({ server: s.addr!, caPem: s.runtime.trustBundlePem, dir, attestation: { joinToken: 'rjt.spent' }, clock, scheduler: new ManualScheduler(clock) });
    try {
      await again.start();
      expect(again.spiffeId).toBe(agent.spiffeId);
    } finally {
      await again.stop();
    }
  });
});

describe('GET /v1/pki/events', () => {
  it('streams a revoked event to a subscriber, and audits the subscription', async () => {
    const s = await startTestServer({ listen: true });
    try {
      const csr = await (await import('../support/pki.js')).makeCsr();
      const signed = (await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { csr: csr.pem, spiffe_id: `${TD}/x` } })).json() as { serial_number: string };
      const received: string[] = [];
      const req = https.get(`${s.addr}/v1/pki/events`, { ca: s.runtime.trustBundlePem, headers: { authorization: `Bearer ${s.adminToken}` } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => received.push(c));
      });
      try {
        await vi.waitFor(() => expect(s.runtime.pkiEvents.subscribers).toBe(1));
        await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { spiffe_id: `${TD}/x` } });
        await vi.waitFor(() => expect(received.join('')).toContain('event: revoked'));
        const data = /data: (.*)\n/.exec(received.join(''))![1]!;
        expect(JSON.parse(data)).toMatchObject({ type: 'revoked', serial_numbers: [signed.serial_number], spiffe_id: `${TD}/x` });
        const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').execute();
        expect(rows.map((r) => JSON.parse(r.payload) as { action: string; outcome: string }).filter((e) => e.action === 'pki:events')).toEqual([expect.objectContaining({ outcome: 'success' })]);
      } finally {
        req.destroy();
      }
      await vi.waitFor(() => expect(s.runtime.pkiEvents.subscribers).toBe(0));
    } finally {
      await s.close();
    }
  });

  it('ends open streams when the server shuts down, instead of holding the shutdown', async () => {
    const s = await startTestServer({ listen: true });
    const ended = new Promise<void>((resolve) => {
      https.get(`${s.addr}/v1/pki/events`, { ca: s.runtime.trustBundlePem, headers: { authorization: `Bearer ${s.adminToken}` } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
    });
    await vi.waitFor(() => expect(s.runtime.pkiEvents.subscribers).toBe(1));
    await s.close();
    await ended;
    expect(s.runtime.pkiEvents.subscribers).toBe(0);
  });
});


