import 'reflect-metadata';
import { execFile } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { type FeedChange, RevocationFeed } from '../../src/sdk/revocation-feed.js';
import type { SvidSource } from '../../src/sdk/svid-source.js';

/**
 * A control plane (or a load balancer in front of it) that accepts TCP connections and never
 * answers: the feed must give up on each attempt after `idleTimeoutMs`, report it, retry with
 * backoff, and never keep the process alive meanwhile.
 */

const noSvid: SvidSource = { current: () => undefined, onUpdate: () => () => undefined };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function stalledListener(): Promise<{ addr: string; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const listener = net.createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => {
    for (const socket of accepted) socket.destroy();
    return new Promise((resolve) => listener.close(resolve));
  });
  return { addr: `https://127.0.0.1:${(listener.address() as AddressInfo).port}`, accepted };
}

describe('RevocationFeed against a control plane that never answers', () => {
  it('fails each silent attempt after idleTimeoutMs and retries with backoff, never going live', async () => {
    const { addr, accepted } = await stalledListener();
    const feed = new RevocationFeed({ source: noSvid, controlPlane: { addr }, trustDomain: 'example.org', minBackoffMs: 1, maxBackoffMs: 5, idleTimeoutMs: 40 });
    cleanup.push(() => feed.close());
    const changes: FeedChange[] = [];
    feed.watch((change) => changes.push(change));
    await new Promise<void>((resolve) => {
      const stop = feed.watch(() => changes.filter((c) => c.type === 'disconnected').length >= 2 && (stop(), resolve()));
    });
    expect(accepted.length).toBeGreaterThanOrEqual(2);
    expect(changes.every((c) => c.type === 'disconnected' && /no answer within 40 ms/.test(c.error.message))).toBe(true);
    expect(feed.live).toBe(false);
    expect(feed.vouchesFor(feed.mark(), 'example.org', `${addr}/v1/pki/ocsp`)).toBe(false);
  });

  it('does not keep the process alive while it connects or waits to retry (never closed, the process exits on its own)', async () => {
    const fixture = fileURLToPath(new URL('./revocation-feed-stalled.fixture.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
    // Bounded by the test timeout: a feed holding the process open makes this hang until killed.
    const { stdout } = await promisify(execFile)(tsx, [fixture], { timeout: 50_000 });
    expect(stdout.trim().split('\n').at(-1)).toBe('exited');
  });
});
