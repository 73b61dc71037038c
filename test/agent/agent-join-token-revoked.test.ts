import 'reflect-metadata';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RampartAgent } from '../../src/agent/agent.js';
import { ManualScheduler } from '../../src/core/scheduler.js';
import { ManualClock } from '../../src/core/clock.js';
import type { Logger } from '../../src/core/logger.js';
import { RampartApiError } from '../../src/sdk/client.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * An agent that attested with a join token and whose own SVID is then revoked. The token is
 * one-time and stays spent, so the agent cannot attest again by itself: it drops the revoked SVID
 * (a restart must not resume with it), and the operator flow brings it back under the same ID: a
 * new token for that ID, and a restart with it. A revocation made while the agent was down is
 * noticed at start, and the new token is used instead of the kept SVID.
 */

describe('an agent attested with a join token, after its own SVID is revoked', () => {
  let s: TestServer;
  let root: string;
  const running: RampartAgent[] = [];

  beforeAll(async () => {
    s = await startTestServer({ listen: true, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
    root = mkdtempSync(join(tmpdir(), 'rampart-agent-revoked-'));
  });
  afterAll(async () => {
    for (const a of running) await a.stop();
    await s?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const admin = () => ({ authorization: `Bearer ${s.adminToken}` });
  const newToken = async (spiffeId?: string) => {
    const r = await s.app.inject({ method: 'POST', url: '/v1/pki/agent/tokens', headers: admin(), payload: { ttl: '10m', ...(spiffeId ? { spiffe_id: spiffeId } : {}) } });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { token: string }).token;
  };
  const revoke = async (serial: string) => expect((await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: admin(), payload: { serial_number: serial, reason: 'keyCompromise' } })).statusCode).toBe(200);
  const logged: string[] = [];
  const logger = { info: () => undefined, warn: (_: object, msg: string) => void logged.push(msg), error: (_: object, msg: string) => void logged.push(msg) } as unknown as Pick<Logger, 'info' | 'warn' | 'error'>;
  const agentWith = (dir: string, joinToken: string) => {
    const clock = new ManualClock(s.clock.now());
    const agent = new RampartAgent({ server: s.addr!, caPem: s.runtime.trustBundlePem, dir, attestation: { joinToken }, clock, scheduler: new ManualScheduler(clock), random: () => 0.5, logger });
    running.push(agent);
    return agent;
  };
  const stop = async (agent: RampartAgent) => {
    await agent.stop();
    running.splice(running.indexOf(agent), 1);
  };

  it('drops the revoked SVID, refuses to come back on the spent token, and comes back on a new token for its ID', async () => {
    const dir = join(root, 'live');
    const token = await newToken();
    const first = agentWith(dir, token);
    await first.start();
    const id = first.spiffeId!;
    const revoked = first.ownSerialNumber!;
    await vi.waitFor(() => expect(s.runtime.pkiEvents.subscribers).toBeGreaterThan(0));
    await revoke(revoked);
    await vi.waitFor(() => expect(existsSync(join(dir, 'agent', 'svid.pem'))).toBe(false));
    expect(logged.at(-1)).toContain(`rampart agent token create --spiffe-id ${id}`);
    await stop(first);

    // A restart on the spent token attests (nothing to resume) and is refused: the token worked once.
    const again = agentWith(dir, token);
    const refused = await again.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(RampartApiError);
    expect((refused as RampartApiError).code).toBe('pki.join_token_replayed');
    await stop(again);

    const back = agentWith(dir, await newToken(id));
    await back.start();
    expect(back.spiffeId).toBe(id);
    expect(back.ownSerialNumber).not.toBe(revoked);
    await back.sync();
    await stop(back);
  });

  it('notices at start that the kept SVID was revoked while it was down, and attests with the token it was given', async () => {
    const dir = join(root, 'down');
    const first = agentWith(dir, await newToken());
    await first.start();
    const id = first.spiffeId!;
    const kept = first.ownSerialNumber!;
    await stop(first);
    await revoke(kept);
    expect(existsSync(join(dir, 'agent', 'svid.pem'))).toBe(true);

    const back = agentWith(dir, await newToken(id));
    logged.length = 0;
    await back.start();
    expect(logged).toEqual(["the agent's kept SVID was revoked while it was down; attesting again"]);
    expect(back.spiffeId).toBe(id);
    expect(back.ownSerialNumber).not.toBe(kept);
    await back.sync();
  });
});
