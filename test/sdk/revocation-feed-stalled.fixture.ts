/**
 * Run as a child process by revocation-feed-review.test.ts: a feed to a control plane that
 * accepts TCP connections and never answers, never closed. The process must exit on its own: the
 * feed may not hold it open, connecting or waiting to retry. Prints each change of the feed.
 */
import 'reflect-metadata';
import net, { type AddressInfo } from 'node:net';
import { RevocationFeed } from '../../src/sdk/revocation-feed.js';
import type { SvidSource } from '../../src/sdk/svid-source.js';

// The listener and the connections it accepts are this fixture's, not the feed's: they must not hold the process either.
const listener = net.createServer((socket) => socket.unref());
await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
listener.unref();
const source: SvidSource = { current: () => undefined, onUpdate: () => () => undefined };
const feed = new RevocationFeed({ source, controlPlane: { addr: `https://127.0.0.1:${(listener.address() as AddressInfo).port}` }, trustDomain: 'example.org', minBackoffMs: 1, maxBackoffMs: 5, idleTimeoutMs: 30 });
feed.watch((change) => console.log(change.type));
process.on('exit', () => console.log('exited'));
