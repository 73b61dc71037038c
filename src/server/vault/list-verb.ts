import { randomUUID } from 'node:crypto';
import { IncomingMessage, STATUS_CODES, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { AUDIT_SCHEMA_VERSION } from '../../audit/event.js';
import { ERROR_CODES, type ErrorCode, isRampartError } from '../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import { PROBLEM_CONTENT_TYPE, problem } from '../problem.js';
import { vaultErrorPayload } from './errors.js';

/**
 * Vault's `LIST` HTTP method, and every other request Node's HTTP parser refuses.
 *
 * Node's parser (llhttp) knows a fixed set of methods and fails the connection on any other
 * (`HPE_INVALID_METHOD`) before application code runs; yet node-vault by default and the `vault`
 * CLI send lists as `LIST /v1/…`. No server option admits an extra method (`insecureHTTPParser`
 * relaxes header parsing only), so the parser's `clientError` is where a LIST can be recovered.
 * {@link clientErrorHandler} takes it when, and only when, nothing about the connection can be
 * ambiguous:
 *
 * - the parser stopped two bytes into the packet it was handed (`LI` read as a prefix of `LINK`,
 *   refused at `S`), so the packet starts a message and no earlier byte belongs to it;
 * - no response of an earlier request on the connection is in flight (no pipelining);
 * - the packet is exactly one request head and nothing else: no body (no `Transfer-Encoding`,
 *   `Content-Length` absent or 0), no bytes after the blank line, so nothing is left for another
 *   parser to read as a second request;
 * - the head is strict HTTP/1.1 ({@link parseListHead}): ASCII only, CRLF only, no obs-fold, no
 *   whitespace before a colon, no header twice, `Host` present, at most 16 KiB and 100 headers,
 *   an origin-form target under `/v1/` without a `list` parameter of its own.
 *
 * It then runs as Vault itself treats LIST, `GET <target>?list=true` (vault http/logical.go),
 * through Fastify's own routing on the real socket: authentication (a client certificate
 * included), tenant resolution, Cedar, the Vault handler and the audit event run unchanged, and
 * the answer closes the connection (`Connection: close`), since the parser cannot go on.
 *
 * Anything else is refused as Node would refuse it (400, 408 for a timeout, 431 for an oversize
 * head), in Vault's `{"errors":[…]}` for a LIST or a request carrying a Vault header under
 * `/v1/`, in problem+json otherwise, and audited like a request refused before authentication:
 * tenant `default`, no principal, `request.*` error code. Nothing of the refused bytes is echoed
 * or recorded.
 */
const MAX_HEAD_BYTES = 16 * 1024;
const MAX_HEADERS = 100;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TARGET = /^\/v1\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$/;
/** Where llhttp stops on `LIST` at the start of a message: after `LI`, a prefix of `LINK`. */
const LIST_FAILS_AT = 2;

export interface ListHead {
  /** The target as Vault routes a LIST: `GET` with `list=true` added to the query. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly rawHeaders: readonly string[];
}

/** Parses a raw `LIST` request packet strictly; a string is the reason it is refused. */
export function parseListHead(packet: Buffer): ListHead | string {
  const end = packet.indexOf('\r\n\r\n');
  if (end === -1) return packet.length >= MAX_HEAD_BYTES ? 'the request head is too large' : 'the request head is incomplete';
  if (end + 4 > MAX_HEAD_BYTES) return 'the request head is too large';
  if (end + 4 !== packet.length) return 'a LIST request has no body and nothing may follow it on the connection';
  for (let i = 0; i < end; i++) {
    const b = packet[i]!;
    if (b > 0x7e || (b < 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a)) return 'the request head must be printable ASCII';
  }
  const lines = packet.toString('latin1', 0, end).split('\r\n');
  if (lines.some((l) => l.includes('\r') || l.includes('\n'))) return 'lines of the request head must end in CRLF';
  const line = /^LIST (\S+) HTTP\/1\.1$/.exec(lines[0]!);
  if (!line || !TARGET.test(line[1]!)) return 'the request line must be "LIST /v1/<path> HTTP/1.1"';
  if (lines.length - 1 > MAX_HEADERS) return 'the request has too many headers';
  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  for (const field of lines.slice(1)) {
    if (field.startsWith(' ') || field.startsWith('\t')) return 'folded header lines are not accepted';
    const colon = field.indexOf(':');
    const name = field.slice(0, colon);
    if (colon < 1 || !TOKEN.test(name)) return 'a header line is malformed';
    const key = name.toLowerCase();
    if (Object.hasOwn(headers, key)) return 'a header appears more than once';
    // trim(), not a /[ \t]+$/ regex: that backtracks quadratically on long runs of blanks, before any
    // authentication. The ASCII check above leaves SP and HTAB as the only blanks a line can hold.
    const value = field.slice(colon + 1).trim();
    headers[key] = value;
    rawHeaders.push(name, value);
  }
  if (headers.host === undefined || headers.host === '') return 'the Host header is required';
  if (headers['transfer-encoding'] !== undefined) return 'a LIST request has no body';
  if (headers['content-length'] !== undefined && headers['content-length'] !== '0') return 'a LIST request has no body';
  if (headers.upgrade !== undefined || headers.expect !== undefined) return 'a LIST request cannot upgrade the connection or expect a body';
  const target = line[1]!;
  const q = target.indexOf('?');
  const query = q === -1 ? '' : target.slice(q + 1);
  if (query !== '' && new URLSearchParams(query).has('list')) return 'a LIST request cannot carry a list parameter';
  return { url: `${q === -1 ? target : target.slice(0, q)}?${query === '' ? '' : `${query}&`}list=true`, headers, rawHeaders };
}

interface ParserError extends Error {
  readonly code?: string;
  readonly bytesParsed?: number;
  readonly rawPacket?: Buffer;
}

const PARSER_CODES: Readonly<Record<string, ErrorCode>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'request.timeout',
  HPE_HEADER_OVERFLOW: 'request.headers_too_large',
};

const VAULT_HEADER = /\r\nx-vault-(token|request|namespace):/i;

/** What a refused packet looks like: a LIST, or another Vault client's request (answered in Vault's shape). */
function lookOf(packet: Buffer | undefined): { list: boolean; vault: boolean } {
  const text = packet ? packet.toString('latin1', 0, Math.min(packet.length, MAX_HEAD_BYTES)) : '';
  const list = /^(\r\n)*LIST /.test(text);
  return { list, vault: list || (/^(\r\n)*[A-Z]+ \/v1\//.test(text) && VAULT_HEADER.test(text)) };
}

/** The `clientErrorHandler` of the Fastify server (app.ts); `this` is the Fastify instance. */
export function clientErrorHandler(runtime: Runtime): (this: FastifyInstance, error: Error, socket: Socket) => void {
  // The dead parser fails every later packet of the connection too; only the first failure counts.
  const seen = new WeakSet<Socket>();
  return function (this: FastifyInstance, error, socket) {
    // Node's parser errors carry these (http _http_server.js, prepareError); Fastify's type misses them.
    const err = error as ParserError;
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    // Node's own test for an answer of an earlier request still being written (http _http_server.js).
    const inFlight = (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;
    if (seen.has(socket)) {
      // A connection already answered (or refused) and then left idle past the request timeout is
      // cut off, as Node would have done had its parser not given up on the connection.
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && !inFlight) socket.destroy();
      return;
    }
    seen.add(socket);
    const packet = err.rawPacket;
    if (err.code === 'HPE_INVALID_METHOD' && packet && err.bytesParsed === LIST_FAILS_AT && packet.subarray(0, 5).toString('latin1') === 'LIST ') {
      const head = inFlight ? 'a LIST request cannot follow a request whose answer is still being sent' : parseListHead(packet);
      if (typeof head !== 'string') return dispatch(this, socket, head);
      return refuse(runtime, this, socket, { code: 'request.malformed_http', detail: head, vault: true, method: 'LIST', inFlight });
    }
    const code = PARSER_CODES[err.code ?? ''] ?? 'request.malformed_http';
    this.log.debug({ err: { code: err.code, message: err.message } }, 'the HTTP parser refused a request');
    const look = lookOf(packet);
    refuse(runtime, this, socket, { code, detail: ERROR_CODES[code].title, vault: look.vault, method: look.list ? 'LIST' : '', inFlight });
  };
}

/** Runs the LIST as `GET …?list=true` through the app on the connection's own socket. */
function dispatch(app: FastifyInstance, socket: Socket, head: ListHead): void {
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.url = head.url;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.httpVersion = '1.1';
  req.headers = { ...head.headers };
  req.rawHeaders = [...head.rawHeaders];
  req.complete = true;
  req.push(null);
  const res = new ServerResponse(req);
  // Answered with `Connection: close`: the parser of this connection cannot read another request.
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => {
    res.detachSocket(socket);
    socket.destroySoon();
  });
  app.routing(req, res);
}

interface Refusal {
  readonly code: ErrorCode;
  readonly detail: string;
  /** Answer in Vault's error shape. */
  readonly vault: boolean;
  /** `LIST` for a refused LIST; '' when the parser could not tell the method. */
  readonly method: string;
  readonly inFlight: boolean;
}

/** Audits the refusal like a request refused before authentication, then answers and closes. */
function refuse(runtime: Runtime, app: FastifyInstance, socket: Socket, refusal: Refusal): void {
  answerRefusal(runtime, app, socket, refusal).catch((err: unknown) => {
    app.log.error({ err }, 'answering a refused request failed');
    socket.destroy();
  });
}

async function answerRefusal(runtime: Runtime, app: FastifyInstance, socket: Socket, refusal: Refusal): Promise<void> {
  const requestId = randomUUID();
  let status: number = ERROR_CODES[refusal.code].status;
  let code: ErrorCode = refusal.code;
  let detail = refusal.detail;
  try {
    await runtime.audit.append({
      schema_version: AUDIT_SCHEMA_VERSION,
      time: runtime.clock.now().toISOString(),
      tenant: 'default',
      request_id: requestId,
      source_ip: socket.remoteAddress ?? '',
      principal: null,
      action: null,
      resource: null,
      outcome: 'invalid',
      authorization: null,
      error_code: code,
      http: { method: refusal.method, route: '', status },
    });
  } catch (err) {
    // Fail closed as app.ts does: the refusal is still answered, as the pushback it became.
    app.log.error({ err }, 'audit append failed; refusing the request');
    status = 503;
    code = isRampartError(err) && err.code === 'audit.pushback' ? 'audit.pushback' : 'audit.write_failed';
    detail = 'the audit log could not record this request; nothing was returned';
  }
  // An earlier answer still being written must not be corrupted: the connection is only closed.
  if (refusal.inFlight || !socket.writable) return void socket.destroy();
  const body = refusal.vault ? vaultErrorPayload([detail]) : JSON.stringify(problem(code, detail, requestId));
  const type = refusal.vault ? 'application/json' : PROBLEM_CONTENT_TYPE;
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\n${status === 503 ? 'Retry-After: 1\r\n' : ''}Connection: close\r\n\r\n${body}`,
  );
  socket.destroySoon();
}
