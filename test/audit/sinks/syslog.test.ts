import 'reflect-metadata';
import { type AddressInfo, type Socket, createServer as createNetServer } from 'node:net';
import { type Server, type TLSSocket, createServer } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeliveredEvent, SinkDispatcher } from '../../../src/audit/sink.js';
import {
  SD_ID,
  SyslogSink,
  escapeSdParam,
  formatSyslogMessage,
  frameOctetCounted,
  severityFor,
  unescapeSdParam,
} from '../../../src/audit/sinks/syslog.js';
import { ManualClock } from '../../../src/core/clock.js';
import { ManualTimers, MemorySinkStore } from '../../support/audit-sinks.js';
import { testServerTls } from '../../support/pki.js';

/**
 * The syslog sink against a local RFC 5425 receiver written here from the RFCs: frames are split
 * by octet counting (RFC 6587 §3.4.1) and each message is parsed by the RFC 5424 §6 grammar.
 */

// ---------------------------------------------------------------------------------------------
// A receiver-side parser, independent of the sink's formatter.

interface ParsedSyslog {
  pri: number;
  version: string;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sdId: string;
  params: Record<string, string>;
  msg: Buffer;
}

/** Splits `MSG-LEN SP SYSLOG-MSG` frames; returns the complete ones and the unread rest. */
function splitFrames(buffer: Buffer): { frames: Buffer[]; rest: Buffer } {
  const frames: Buffer[] = [];
  let at = 0;
  for (;;) {
    const sp = buffer.indexOf(0x20, at);
    if (sp < 0) break;
    const lenText = buffer.subarray(at, sp).toString('ascii');
    expect(lenText).toMatch(/^[1-9]\d*$/);
    const len = Number(lenText);
    if (buffer.length < sp + 1 + len) break;
    frames.push(buffer.subarray(sp + 1, sp + 1 + len));
    at = sp + 1 + len;
  }
  return { frames, rest: buffer.subarray(at) };
}

/** RFC 5424 §6 for the one SD-ELEMENT the sink sends; PARAM-VALUE escapes per §6.3.3. */
function parseSyslog(frame: Buffer): ParsedSyslog {
  const text = frame.toString('utf8');
  const header = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) \[/.exec(text);
  if (!header) throw new Error(`not RFC 5424: ${text.slice(0, 80)}`);
  let i = header[0].length;
  const sdIdEnd = text.indexOf(' ', i);
  const sdId = text.slice(i, sdIdEnd);
  i = sdIdEnd;
  const params: Record<string, string> = {};
  while (text[i] === ' ') {
    const eq = text.indexOf('=', i);
    const name = text.slice(i + 1, eq);
    expect(text[eq + 1]).toBe('"');
    let j = eq + 2;
    let raw = '';
    while (text[j] !== '"') {
      if (text[j] === '\\' && ['"', '\\', ']'].includes(text[j + 1]!)) {
        raw += text[j]! + text[j + 1]!;
        j += 2;
      } else {
        // An unescaped ']' or '"' inside a value would end the element early.
        expect(text[j]).not.toBe(']');
        raw += text[j];
        j++;
      }
    }
    params[name] = unescapeSdParam(raw);
    i = j + 1;
  }
  expect(text[i]).toBe(']');
  expect(text[i + 1]).toBe(' ');
  const msgStart = Buffer.byteLength(text.slice(0, i + 2), 'utf8');
  return {
    pri: Number(header[1]),
    version: header[2]!,
    timestamp: header[3]!,
    hostname: header[4]!,
    appName: header[5]!,
    procId: header[6]!,
    msgId: header[7]!,
    sdId,
    params,
    msg: frame.subarray(msgStart),
  };
}

// ---------------------------------------------------------------------------------------------

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function delivered(leafIndex: number, fields: Record<string, unknown>): DeliveredEvent {
  return {
    leafIndex,
    payload: JSON.stringify({
      schema_version: 1,
      time: '2026-01-01T12:34:56.789Z',
      tenant: 'acme',
      request_id: `req-${leafIndex}`,
      action: 'tenant:read',
      outcome: 'success',
      ...fields,
    }),
  };
}

interface Receiver {
  readonly server: Server;
  readonly port: number;
  readonly messages: ParsedSyslog[];
  readonly connections: number;
  /** Closes every open connection. */
  dropAll(): void;
  /** Closes the next `n` connections before the TLS handshake. */
  refuseNext(n: number): void;
  close(): Promise<void>;
}

async function startReceiver(cert: string, key: string): Promise<Receiver> {
  const messages: ParsedSyslog[] = [];
  let connections = 0;
  let refuse = 0;
  const sockets = new Set<TLSSocket>();
  const receiver: Receiver = {
    server: undefined as unknown as Server,
    port: 0,
    messages,
    get connections() {
      return connections;
    },
    dropAll() {
      for (const s of sockets) s.destroy();
    },
    refuseNext(n) {
      refuse = n;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => receiver.server.close(() => r()));
    },
  };
  const server = createServer({ cert, key, minVersion: 'TLSv1.2' }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const { frames, rest } = splitFrames(Buffer.concat([pending, chunk]));
      pending = rest;
      messages.push(...frames.map(parseSyslog));
    });
  });
  server.on('connection', (raw: Socket) => {
    if (refuse > 0) {
      refuse--;
      raw.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  Object.assign(receiver, { server, port: (server.address() as AddressInfo).port });
  return receiver;
}

async function waitFor(done: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (done()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error('condition not reached');
}

describe('SyslogSink over TLS', () => {
  const clock = new ManualClock(Date.now());
  let caPem: string;
  let otherCaPem: string;
  let receiver: Receiver;

  beforeAll(async () => {
    const tls = await testServerTls('syslog receiver', clock);
    caPem = tls.caPem;
    otherCaPem = tls.otherCaPem;
    receiver = await startReceiver(tls.certPem, tls.keyPem);
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('sends octet-counted RFC 5424 messages with the header, structured data and BOM-prefixed event', async () => {
    const sink = new SyslogSink({ name: 'siem', host: '127.0.0.1', port: receiver.port, ca: caPem, hostname: 'cp-1.example', facility: 'authpriv' });
    const batch = [
      delivered(0, {}),
      delivered(1, { outcome: 'denied', action: 'pki:sign', tenant: 'we"ird\\ten]ant', details: { note: 'ünï€😀' } }),
      delivered(2, { outcome: 'invalid', action: null }),
      delivered(3, { outcome: 'unauthenticated', action: 'x'.repeat(40) }),
    ];
    const before = receiver.messages.length;
    await sink.deliver(batch);
    await waitFor(() => receiver.messages.length === before + 4);
    await sink.close();
    const got = receiver.messages.slice(before);

    for (const [i, m] of got.entries()) {
      expect(m.version).toBe('1');
      expect(m.timestamp).toBe('2026-01-01T12:34:56.789Z');
      expect(m.hostname).toBe('cp-1.example');
      expect(m.appName).toBe('rampart');
      expect(m.procId).toBe(String(process.pid));
      expect(m.sdId).toBe(SD_ID);
      expect(m.params.leaf_index).toBe(String(i));
      // §6.4: MSG starts with the UTF-8 BOM and is the stored payload, byte for byte.
      expect(m.msg.subarray(0, 3)).toEqual(BOM);
      expect(m.msg.subarray(3).toString('utf8')).toBe(batch[i]!.payload);
    }
    // PRI = facility (authpriv = 10) · 8 + severity (RFC 5424 §6.2.1).
    expect(got.map((m) => m.pri)).toEqual([10 * 8 + 6, 10 * 8 + 4, 10 * 8 + 5, 10 * 8 + 4]);
    expect(got.map((m) => m.msgId)).toEqual(['tenant:read', 'pki:sign', '-', 'x'.repeat(32)]);
    expect(got.map((m) => m.params.outcome)).toEqual(['success', 'denied', 'invalid', 'unauthenticated']);
    expect(got[1]!.params.tenant).toBe('we"ird\\ten]ant');
  });

  it('refuses a receiver whose certificate does not chain to the configured CA', async () => {
    const sink = new SyslogSink({ name: 'siem', host: '127.0.0.1', port: receiver.port, ca: otherCaPem });
    await expect(sink.deliver([delivered(0, {})])).rejects.toThrow(/certificate/i);
    expect(sink.connected).toBe(false);
    await sink.close();
  });

  it('reconnects after the receiver closed the connection', async () => {
    const sink = new SyslogSink({ name: 'siem', host: '127.0.0.1', port: receiver.port, ca: caPem });
    const before = receiver.messages.length;
    const connectionsBefore = receiver.connections;
    await sink.deliver([delivered(0, {}), delivered(1, {})]);
    await waitFor(() => receiver.messages.length === before + 2);
    expect(sink.connected).toBe(true);
    receiver.dropAll();
    await waitFor(() => !sink.connected);
    await sink.deliver([delivered(2, {})]);
    await waitFor(() => receiver.messages.length === before + 3);
    await sink.close();
    expect(receiver.messages.slice(before).map((m) => m.params.leaf_index)).toEqual(['0', '1', '2']);
    expect(receiver.connections - connectionsBefore).toBe(2);
  });

  it('fails deliveries while connections are refused, and the dispatcher retries with backoff until all arrive', async () => {
    const sink = new SyslogSink({ name: 'siem', host: '127.0.0.1', port: receiver.port, ca: caPem });
    const store = new MemorySinkStore();
    store.append(12);
    const timers = new ManualTimers();
    const errors: string[] = [];
    const dispatcher = new SinkDispatcher({
      store,
      sinks: [sink],
      clock,
      batchSize: 5,
      schedule: timers.schedule,
      initialBackoffMs: 10,
      onError: (_s, err) => errors.push((err as Error).message),
    });
    const before = receiver.messages.length;
    receiver.refuseNext(3);
    dispatcher.start();
    for (let i = 0; i < 10 && store.cursors.get('siem') !== 12; i++) {
      await dispatcher.settled();
      timers.fire();
    }
    await dispatcher.settled();
    await waitFor(() => receiver.messages.length === before + 12);
    await dispatcher.stop();
    expect(errors).toHaveLength(3);
    expect(timers.requested.slice(0, 3)).toEqual([10, 20, 40]);
    expect(receiver.messages.slice(before).map((m) => Number(m.params.leaf_index))).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('fails a delivery while nothing listens, and refuses to deliver once closed', async () => {
    // A port that was just free: nothing listens there.
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const sink = new SyslogSink({ name: 'siem', host: '127.0.0.1', port, ca: caPem, timeoutMs: 2000 });
    await expect(sink.deliver([delivered(0, {})])).rejects.toThrow();
    await sink.close();
    await expect(sink.deliver([delivered(0, {})])).rejects.toThrow(/closed/);
  });
});

describe('RFC 5424 formatting', () => {
  const fields = { facility: 'local3' as const, hostname: 'h', procId: '42' };

  it('escapes exactly ", \\ and ] in SD-PARAM values, and unescaping restores the value', () => {
    expect(escapeSdParam('a"b\\c]d[e=f')).toBe('a\\"b\\\\c\\]d[e=f');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (value) => {
        const escaped = escapeSdParam(value);
        expect(unescapeSdParam(escaped)).toBe(value);
        // No unescaped terminator survives: strip escape pairs, and none of the three is left.
        expect(escaped.replace(/\\["\\\]]/g, '')).not.toMatch(/["\\\]]/);
      }),
    );
  });

  it('round-trips any tenant and outcome through a formatted message and a receiver parse', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), fc.string({ maxLength: 20 }), fc.nat(), (tenant, outcome, leafIndex) => {
        const e = { leafIndex, payload: JSON.stringify({ time: '2026-01-01T00:00:00Z', tenant, outcome, action: 'a' }) };
        const frame = frameOctetCounted(formatSyslogMessage(e, fields));
        const { frames, rest } = splitFrames(frame);
        expect(rest.length).toBe(0);
        const parsed = parseSyslog(frames[0]!);
        expect(parsed.params).toEqual({ leaf_index: String(leafIndex), outcome, tenant });
        expect(parsed.pri).toBe(19 * 8 + severityFor(outcome));
        expect(parsed.msg.subarray(3).toString('utf8')).toBe(e.payload);
      }),
    );
  });

  it('maps outcomes to severities: warning for denials and failures, notice for invalid, info for success', () => {
    expect(['success', 'denied', 'unauthenticated', 'failed', 'invalid', undefined].map(severityFor)).toEqual([6, 4, 4, 4, 5, 5]);
  });

  it('uses NILVALUE for a missing time or action and replaces non-ASCII header characters', () => {
    const msg = formatSyslogMessage({ leafIndex: 1, payload: '{"action":"tenant:réad ok","time":"yesterday"}' }, { ...fields, hostname: 'host name' });
    expect(msg).toMatch(/^<157>1 - host_name rampart 42 tenant:r_ad_ok \[rampart@32473 leaf_index="1" outcome="" tenant=""\] \u{feff}\{/u);
    const broken = formatSyslogMessage({ leafIndex: 2, payload: 'not json' }, fields);
    expect(broken).toBe(`<157>1 - h rampart 42 - [rampart@32473 leaf_index="2" outcome="" tenant=""] \u{feff}not json`);
  });

  it('counts the frame length in octets, not characters', () => {
    const frame = frameOctetCounted('é😀');
    expect(frame.toString('utf8')).toBe('6 é😀');
  });
});
