import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { type TLSSocket, connect } from 'node:tls';
import type { AuditSink, DeliveredEvent } from '../sink.js';

/**
 * RFC 5424 syslog over TLS (RFC 5425), framed by octet counting (RFC 6587 §3.4.1), for SIEMs
 * that ingest syslog (rsyslog, syslog-ng, Splunk, QRadar, Sentinel's agent).
 *
 * Syslog over TLS has no application-level acknowledgement: a batch counts as delivered once
 * TLS accepted it into the socket. Bytes the kernel still held when the connection broke can be
 * lost; a receiver that must see every event uses the webhook sink or checks `leaf_index` for
 * gaps (see docs/audit-sinks.md).
 */

/** RFC 5424 §6.2.1 facility codes this sink accepts. */
export const SYSLOG_FACILITIES = {
  auth: 4,
  authpriv: 10,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

/** RFC 5424 §6.2.1 severities. */
const SEVERITY = { warning: 4, notice: 5, info: 6 } as const;

/** Private enterprise number in the SD-ID (RFC 5424 §7.2.2); 32473 is reserved for documentation (RFC 5612). */
export const SD_ID = 'rampart@32473';

const APP_NAME = 'rampart';
const NILVALUE = '-';
const BOM = '\u{feff}';
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

export interface SyslogHeaderFields {
  readonly facility: SyslogFacility;
  readonly hostname: string;
  readonly procId: string;
}

/** SD-PARAM value escaping (RFC 5424 §6.3.3): `"`, `\` and `]` are preceded by a backslash. */
export function escapeSdParam(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** The inverse of {@link escapeSdParam}, as a receiver applies it. */
export function unescapeSdParam(escaped: string): string {
  return escaped.replace(/\\(["\\\]])/g, '$1');
}

/** Denials and failures stand out in a SIEM; routine successes are informational. */
export function severityFor(outcome: unknown): number {
  switch (outcome) {
    case 'success':
      return SEVERITY.info;
    case 'denied':
    case 'unauthenticated':
    case 'failed':
      return SEVERITY.warning;
    default:
      return SEVERITY.notice;
  }
}

/**
 * A header field of `max` printable US-ASCII characters (RFC 5424 §6): anything else becomes
 * `_`, and an empty value the NILVALUE.
 */
function headerToken(value: string | null | undefined, max: number): string {
  if (value === null || value === undefined || value === '') return NILVALUE;
  return value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
}

/**
 * One RFC 5424 SYSLOG-MSG for an event. MSG is the stored payload, verbatim, after a BOM (§6.4),
 * so it hashes to the leaf it came from.
 */
export function formatSyslogMessage(e: DeliveredEvent, fields: SyslogHeaderFields): string {
  // The payload comes from our own store, but read it defensively: a malformed one is still sent.
  let event: { time?: unknown; action?: unknown; outcome?: unknown; tenant?: unknown } = {};
  try {
    const parsed: unknown = JSON.parse(e.payload);
    if (parsed !== null && typeof parsed === 'object') event = parsed as typeof event;
  } catch {
    /* header fields fall back to NILVALUE */
  }
  const pri = SYSLOG_FACILITIES[fields.facility] * 8 + severityFor(event.outcome);
  const timestamp = typeof event.time === 'string' && TIMESTAMP.test(event.time) ? event.time : NILVALUE;
  const msgId = headerToken(typeof event.action === 'string' ? event.action : null, 32);
  const sd =
    `[${SD_ID} leaf_index="${e.leafIndex}"` +
    ` outcome="${escapeSdParam(typeof event.outcome === 'string' ? event.outcome : '')}"` +
    ` tenant="${escapeSdParam(typeof event.tenant === 'string' ? event.tenant : '')}"]`;
  return `<${pri}>1 ${timestamp} ${headerToken(fields.hostname, 255)} ${APP_NAME} ${headerToken(fields.procId, 128)} ${msgId} ${sd} ${BOM}${e.payload}`;
}

/** RFC 6587 §3.4.1 / RFC 5425 §4.3: `MSG-LEN SP SYSLOG-MSG`, the length in octets. */
export function frameOctetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export interface SyslogSinkOptions {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** PEM CA certificates the server must chain to; undefined means Node's default roots. */
  readonly ca?: string | undefined;
  readonly facility?: SyslogFacility;
  /** HOSTNAME field; defaults to this machine's host name. */
  readonly hostname?: string;
  /** Connect and write timeout. */
  readonly timeoutMs?: number;
}

export class SyslogSink implements AuditSink {
  readonly name: string;
  readonly #options: SyslogSinkOptions;
  readonly #fields: SyslogHeaderFields;
  #socket: TLSSocket | undefined;
  #closed = false;

  constructor(options: SyslogSinkOptions) {
    this.name = options.name;
    this.#options = options;
    this.#fields = {
      facility: options.facility ?? 'authpriv',
      hostname: options.hostname ?? osHostname(),
      procId: String(process.pid),
    };
  }

  async deliver(batch: readonly DeliveredEvent[]): Promise<void> {
    const frames = Buffer.concat(batch.map((e) => frameOctetCounted(formatSyslogMessage(e, this.#fields))));
    const socket = await this.#connect();
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`syslog write timed out after ${timeoutMs} ms`)));
    await new Promise<void>((resolve, reject) => {
      const onClose = () => reject(new Error('syslog connection closed during write'));
      socket.once('close', onClose);
      socket.write(frames, (err) => {
        socket.off('close', onClose);
        socket.setTimeout(0);
        if (err) reject(err);
        else resolve();
      });
    }).catch((err: unknown) => {
      // Reconnect next time: the stream may hold half a frame, which would corrupt the framing.
      socket.destroy();
      throw err;
    });
  }

  /** True while a TLS connection is open (it is opened by the first delivery). */
  get connected(): boolean {
    const socket = this.#socket;
    return socket !== undefined && !socket.destroyed && !socket.connecting;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #connect(): Promise<TLSSocket> {
    if (this.#closed) return Promise.reject(new Error('syslog sink is closed'));
    const current = this.#socket;
    if (current && !current.destroyed && !current.connecting) return Promise.resolve(current);
    const { host, port, ca, timeoutMs = 10_000 } = this.#options;
    return new Promise<TLSSocket>((resolve, reject) => {
      const socket = connect({
        host,
        port,
        ...(ca === undefined ? {} : { ca }),
        // SNI carries host names only (RFC 6066 §3); an IP address is still checked against the SAN.
        ...(isIP(host) ? {} : { servername: host }),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
      });
      this.#socket = socket;
      socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`syslog connection to ${host}:${port} timed out`)));
      socket.on('close', () => {
        if (this.#socket === socket) this.#socket = undefined;
      });
      // Servers do not talk back in RFC 5425; drain anything they send so the socket never stalls.
      socket.resume();
      socket.once('secureConnect', () => {
        socket.off('error', reject);
        // Later errors surface through the write callback or 'close'.
        socket.on('error', () => undefined);
        socket.setTimeout(0);
        resolve(socket);
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`syslog connection to ${host}:${port} closed before the TLS handshake completed`)));
    });
  }
}
