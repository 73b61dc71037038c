import 'reflect-metadata';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RampartAgent } from '../../src/agent/agent.js';
import { ManualScheduler } from '../../src/core/scheduler.js';
import { ManualClock } from '../../src/core/clock.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The agent attesting with a Kubernetes projected service-account token file: it gets its
 * k8s_psat ID and serves an entry registered under a node selector (`k8s:cluster:prod`), not
 * under its own ID; and when its own SVID is revoked it attests again from the token file.
 */
const TD = 'spiffe://default.rampart.local';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';

describe.each(TEST_DATABASES)('rampart agent with a Kubernetes token ($name)', (database) => {
  let s: TestServer;
  let dir: string;
  let agent: RampartAgent;
  let entryId: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-k8s-'));
    const cluster = await generateKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(cluster.publicKey)), kid: 'k1', alg: 'ES256' }] };
    writeFileSync(join(dir, 'rampart.yaml'), `k8s_attestors:\n  - cluster: prod\n    issuer: ${ISSUER}\n    audience: rampart\n    jwks: ${JSON.stringify(jwks)}\n`);
    s = await startTestServer({ database, listen: true, configFile: join(dir, 'rampart.yaml') });
    const now = Math.floor(s.clock.now().getTime() / 1000);
    const token = await new SignJWT({ 'kubernetes.io': { namespace: 'rampart', serviceaccount: { name: 'agent' }, pod: { name: 'agent-abc', uid: 'pod-1' }, node: { name: 'node-7' } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience('rampart')
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(cluster.privateKey);
    writeFileSync(join(dir, 'token'), `${token}\n`);
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/registrations', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { spiffe_id: `${TD}/ns/web/sa/frontend`, parent: 'k8s:cluster:prod', selectors: ['k8s:sa:web/frontend'] } });
    entryId = (r.json() as { id: string }).id;
    const clock = new ManualClock(s.clock.now());
    agent = new RampartAgent({ server: s.addr!, caPem: s.runtime.trustBundlePem, dir: join(dir, 'out'), attestation: { k8sTokenFile: join(dir, 'token') }, clock, scheduler: new ManualScheduler(clock) });
    await agent.start();
  });
  afterAll(async () => {
    await agent?.stop();
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('attests as its node and serves the entry registered under its cluster selector', () => {
    expect(agent.spiffeId).toBe(`${TD}/rampart/agent/k8s_psat/prod/node-7`);
    expect(agent.entries().map((e) => [e.id, e.spiffeId])).toEqual([[entryId, `${TD}/ns/web/sa/frontend`]]);
    expect(existsSync(join(dir, 'out', entryId, 'svid.pem'))).toBe(true);
  });

  it('attests again from the token file when its own SVID is revoked, and keeps working', async () => {
    const before = agent.ownSerialNumber!;
    await vi.waitFor(() => expect(s.runtime.pkiEvents.subscribers).toBe(1));
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { serial_number: before, reason: 'keyCompromise' } });
    expect(r.statusCode).toBe(200);
    await vi.waitFor(() => expect(agent.ownSerialNumber).not.toBe(before));
    await agent.sync();
    await agent.reissue([entryId]);
    expect(agent.entries()).toHaveLength(1);
  });
});
