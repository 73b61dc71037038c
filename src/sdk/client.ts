/**
 * The HTTPS client for the Rampart API, shared by the `rampart` CLI and by programs that embed it.
 *
 * It talks only HTTPS with TLS 1.3 and trusts exactly the CA bundle it is given (the control plane
 * runs its own CA, so the system roots are usually the wrong trust anchors). It never opens the
 * database: everything goes through the same API and policy checks as any other client.
 */
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { type ConsistencyProof, type EventInclusionCheck, type InclusionProof, type VerifiedInclusion, verifyEventInclusion } from './audit-proofs.js';

/**
 * How to reach and authenticate to a Rampart server.
 *
 * @example
 * ```ts
 * const options: RampartClientOptions = {
 *   addr: 'https://127.0.0.1:8443',
 *   token: process.env.RAMPART_TOKEN,
 *   caPem: await readFile('data/ca.pem'),
 * };
 * ```
 */
export interface RampartClientOptions {
  /** Base URL of the server, e.g. `https://127.0.0.1:8443`; a path prefix (behind a proxy) is kept. */
  addr: string;
  /** Bearer token sent on every request; omitted requests are anonymous (only `/v1/health` allows that). */
  token?: string;
  /** PEM trust bundle for the server certificate; replaces the system roots when given. */
  caPem?: string | Buffer;
  /** Tenant to act in, sent as `X-Rampart-Tenant`; defaults to the token's own tenant on the server. */
  tenant?: string;
  /** Client certificate and key for mutual TLS (workload identities). */
  clientCert?: { certPem: string | Buffer; keyPem: string | Buffer };
  /** Give up on a request whose socket stays idle this long. Defaults to 30 seconds. */
  timeoutMs?: number;
}

/**
 * Per-call options of {@link RampartClient.request}.
 *
 * @example
 * ```ts
 * const opts: RequestOptions = { query: { limit: 10 }, body: { name: 'acme' } };
 * ```
 */
export interface RequestOptions {
  /** Serialised as JSON with `Content-Type: application/json`. */
  body?: unknown;
  /** Query parameters; `undefined` values are left out. */
  query?: Record<string, string | number | undefined>;
}

/**
 * Answer of `GET /v1/health`.
 *
 * @example
 * ```ts
 * const h: HealthStatus = await client.health(); // { status: 'ok', version: '0.1.0', store: 'sqlite' }
 * ```
 */
export interface HealthStatus {
  status: string;
  version: string;
  store: 'sqlite' | 'postgres';
}

/**
 * A tenant as the server returns it.
 *
 * @example
 * ```ts
 * const t: Tenant = await client.createTenant('acme'); // { name: 'acme', created_at: '2026-…' }
 * ```
 */
export interface Tenant {
  name: string;
  created_at: string;
}

/**
 * One page of a cursor-paginated listing; pass `next_cursor` back to get the following page.
 *
 * @example
 * ```ts
 * let page: Page<Tenant> = await client.listTenants();
 * while (page.next_cursor) page = await client.listTenants({ cursor: page.next_cursor });
 * ```
 */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/**
 * Cursor and page size for listing calls.
 *
 * @example
 * ```ts
 * const opts: PageOptions = { limit: 50, cursor: previous.next_cursor ?? undefined };
 * ```
 */
export interface PageOptions {
  limit?: number;
  cursor?: string;
}

/**
 * A page of audit events.
 *
 * @example
 * ```ts
 * const page: AuditEventPage = await client.listAuditEvents({ cursor: previous.resume_cursor });
 * ```
 */
export interface AuditEventPage extends Page<AuditEventItem> {
  /** Where to continue later for events written after this page; set even on the last page. */
  resume_cursor: string;
}

/**
 * Filters of `listAuditEvents`; each narrows the addressed tenant's events.
 *
 * @example
 * ```ts
 * const q: AuditEventQuery = { outcome: 'denied', since: '2026-11-24T00:00:00Z', limit: 100 };
 * ```
 */
export interface AuditEventQuery extends PageOptions {
  /** RFC 3339, inclusive. */
  since?: string;
  /** RFC 3339, exclusive. */
  until?: string;
  /** Principal id (token accessor, SPIFFE ID) or `Type::"id"`. */
  principal?: string;
  action?: string;
  /** Resource id or `Type::"id"`. */
  resource?: string;
  outcome?: 'success' | 'denied' | 'invalid' | 'failed' | 'unauthenticated';
}

/**
 * What the server knows about a token; never includes the secret itself.
 *
 * @example
 * ```ts
 * const self: TokenInfo = await client.lookupToken();
 * console.log(self.policies, self.expires_at);
 * ```
 */
export interface TokenInfo {
  accessor: string;
  tenant: string;
  policies: string[];
  display_name: string | null;
  created_at: string;
  expires_at: string | null;
}

/**
 * A freshly created token. `token` is the secret and is shown exactly once; keep `accessor` to
 * look the token up or revoke it later.
 *
 * @example
 * ```ts
 * const created: CreatedToken = await client.createToken({ policies: ['admin'], ttl: '1h' });
 * ```
 */
export interface CreatedToken extends TokenInfo {
  token: string;
}

/**
 * Parameters of {@link RampartClient.createToken}.
 *
 * @example
 * ```ts
 * const req: CreateTokenRequest = { ttl: '1h', policies: ['ci'], displayName: 'github-actions' };
 * ```
 */
export interface CreateTokenRequest {
  /** Lifetime such as `30m` or `1h`; the server applies its default when omitted. */
  ttl?: string;
  /** Policies attached to the token; an empty list is allowed. */
  policies?: string[];
  displayName?: string;
}

/**
 * An audit log event. The SDK does not interpret events; the shape belongs to the audit log.
 *
 * @example
 * ```ts
 * for (const event of (await client.listAuditEvents()).items) console.log(JSON.stringify(event));
 * ```
 */
export type AuditEvent = Record<string, unknown>;

/**
 * One item of an audit event page: the event and its Merkle leaf index (null until integrated).
 * Once retention pruned the event, `event` is null and `pruned` is true; the leaf index and its
 * inclusion proof remain.
 *
 * @example
 * ```ts
 * for (const item of (await client.listAuditEvents()).items) if (!item.pruned) console.log(item.event);
 * ```
 */
export interface AuditEventItem {
  leaf_index: number | null;
  event: AuditEvent | null;
  pruned?: true;
}

/**
 * The audit log's legal hold: while `enabled`, retention prunes nothing.
 *
 * @example
 * ```ts
 * const hold: LegalHold = await client.getLegalHold();
 * if (hold.enabled) console.log(`held since ${hold.since}: ${hold.reason}`);
 * ```
 */
export interface LegalHold {
  enabled: boolean;
  reason: string;
  /** RFC 3339 time the hold in force was placed; null while released. */
  since: string | null;
}

/**
 * The server answered with a non-2xx status (or a 2xx that is not the API's JSON). Fields come
 * from the RFC 9457 problem document, so callers switch on the stable `code`, never the message.
 *
 * @example
 * ```ts
 * try {
 *   await client.createTenant('acme');
 * } catch (err) {
 *   if (err instanceof RampartApiError && err.code === 'tenant.exists') console.log('already there');
 *   else throw err;
 * }
 * ```
 */
export class RampartApiError extends Error {
  /** HTTP status of the answer. */
  readonly status: number;
  /** Stable machine-readable code, e.g. `authz.denied`; `client.unexpected_response` when the body was not a problem document. */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  /** Server-side request id to quote when reporting the problem, when the server sent one. */
  readonly requestId: string | undefined;
  /** Problem type URI, when the server sent one. */
  readonly type: string | undefined;
  /** The whole problem document, for its extension members (a rejected policy push's `errors` and `version`). */
  readonly problem: Readonly<Record<string, unknown>> | undefined;

  constructor(fields: {
    status: number;
    code: string;
    title: string;
    detail: string;
    requestId?: string | undefined;
    type?: string | undefined;
    problem?: Record<string, unknown> | undefined;
  }) {
    super(`${fields.title} (${fields.code}): ${fields.detail}`);
    this.name = 'RampartApiError';
    this.status = fields.status;
    this.code = fields.code;
    this.title = fields.title;
    this.detail = fields.detail;
    this.requestId = fields.requestId;
    this.type = fields.type;
    this.problem = fields.problem;
  }
}

/**
 * The request never got an HTTP answer: the server is unreachable, its certificate is not
 * trusted, or it stopped responding. The message says what to check; `cause` keeps the original
 * Node error and `code` its error code (e.g. `ECONNREFUSED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`).
 *
 * @example
 * ```ts
 * try {
 *   await client.health();
 * } catch (err) {
 *   if (err instanceof RampartTransportError && err.code === 'ECONNREFUSED') console.log('server down');
 * }
 * ```
 */
export class RampartTransportError extends Error {
  /** Node's error code of the underlying failure, when it had one. */
  readonly code: string | undefined;

  constructor(message: string, code: string | undefined, cause: unknown) {
    super(message, { cause });
    this.name = 'RampartTransportError';
    this.code = code;
  }
}

/** OpenSSL/Node codes meaning "the server's certificate did not verify against the trust bundle". */
const CERT_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const DEFAULT_TIMEOUT_MS = 30_000;

/** An HTTP answer before it is interpreted as API JSON or a problem document. */
interface RawResponse {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * What {@link RampartClient.signCertificate} sends.
 *
 * @example
 * ```ts
 * const req: SignCertificateRequest = { csr: csrPem, spiffeId: 'spiffe://default.rampart.local/ns/pay', ttl: '10m' };
 * ```
 */
export interface SignCertificateRequest {
  /** PEM PKCS #10 request. */
  csr: string;
  /** The SPIFFE ID to issue; a workload calling over mTLS may leave it out to renew its own. */
  spiffeId?: string;
  /** e.g. `10m`, `1h` (default 1h; the server refuses more than its maximum, 24h by default). */
  ttl?: string;
}

/**
 * A signed X.509-SVID, shaped like Vault PKI's answer.
 *
 * @example
 * ```ts
 * const { certificate, ca_chain, serial_number, expiration } = await client.signCertificate(req);
 * ```
 */
export interface SignedCertificate {
  certificate: string;
  issuing_ca: string;
  /** PEM certificates from the issuing CA up to the root. */
  ca_chain: string[];
  /** Lowercase hex. */
  serial_number: string;
  /** notAfter, Unix seconds. */
  expiration: number;
  spiffe_id: string;
}

/**
 * What {@link RampartClient.revokeCertificate} sends: exactly one of `serialNumber` and `spiffeId`.
 *
 * @example
 * ```ts
 * const req: RevokeCertificateRequest = { serialNumber: '5c22ea92…', reason: 'superseded' };
 * ```
 */
export interface RevokeCertificateRequest {
  serialNumber?: string;
  spiffeId?: string;
  /** RFC 5280 reason name: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn. */
  reason?: string;
}

/**
 * The answer to a revocation.
 *
 * @example
 * ```ts
 * const { newly_revoked } = await client.revokeCertificate({ spiffeId });
 * ```
 */
export interface RevocationResult {
  serial_numbers: string[];
  newly_revoked: string[];
  revocation_time: number;
  revocation_time_rfc3339: string;
}

/**
 * Client for the Rampart HTTP API. One instance keeps a pool of TLS connections; call
 * {@link RampartClient.close} when done so the process can exit promptly.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { RampartClient } from 'rampart/sdk';
 *
 * const client = new RampartClient({
 *   addr: 'https://127.0.0.1:8443',
 *   token: process.env.RAMPART_TOKEN,
 *   caPem: await readFile('data/ca.pem'),
 * });
 * try {
 *   await client.createTenant('acme');
 *   const { token } = await client.createToken({ policies: ['admin'], ttl: '1h' });
 * } finally {
 *   client.close();
 * }
 * ```
 */
export class RampartClient {
  readonly #base: URL;
  readonly #agent: https.Agent;
  readonly #token: string | undefined;
  readonly #tenant: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: RampartClientOptions) {
    let base: URL;
    try {
      base = new URL(options.addr);
    } catch (cause) {
      throw new Error(`Invalid server address "${options.addr}": expected a URL such as https://127.0.0.1:8443`, {
        cause,
      });
    }
    if (base.protocol !== 'https:') {
      throw new Error(`Invalid server address "${options.addr}": Rampart only serves HTTPS`);
    }
    // Query and fragment make no sense on a base URL; a path prefix does (reverse proxies).
    base.search = '';
    base.hash = '';
    this.#base = base;
    this.#token = options.token;
    this.#tenant = options.tenant;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#agent = new https.Agent({
      keepAlive: true,
      minVersion: 'TLSv1.3',
      ...(options.caPem === undefined ? {} : { ca: options.caPem }),
      ...(options.clientCert === undefined ? {} : { cert: options.clientCert.certPem, key: options.clientCert.keyPem }),
    });
  }

  /**
   * Sends one request and returns the parsed JSON answer (`undefined` for 204). Typed methods
   * below cover the documented API; this is the escape hatch for everything else.
   *
   * @throws {RampartApiError} on a non-2xx answer.
   * @throws {RampartTransportError} when no answer arrived.
   * @example
   * ```ts
   * const page = await client.request<Page<Tenant>>('GET', '/v1/tenants', { query: { limit: 10 } });
   * ```
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = this.#url(path, options.query);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), 'utf8');
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (this.#token !== undefined && this.#token !== '') headers.authorization = `Bearer ${this.#token}`;
    if (this.#tenant !== undefined && this.#tenant !== '') headers['x-rampart-tenant'] = this.#tenant;

    const response = await this.#send(method, url, headers, payload);
    return this.#interpret<T>(response);
  }

  /**
   * Opens a long-lived GET (server-sent events, WHATWG HTML §9.2) with the client's credentials and
   * tenant and resolves with the response once the server answered 2xx. With `timeoutMs`, the
   * request fails once the connection stays silent that long before the response headers (TCP
   * connect, TLS, the server's answer): a listener that accepts and never answers would otherwise
   * hold the caller forever. No timeout applies to the body: the caller sets its own on
   * `res.socket`. `unref` lets the process exit while the stream is connecting or open (a
   * background follower). The caller reads the body and destroys the response to close the stream.
   *
   * @throws {RampartApiError} on a non-2xx answer.
   * @throws {RampartTransportError} when no answer arrived.
   * @example
   * ```ts
   * const res = await client.stream('/v1/secrets/events', { headers: { 'last-event-id': '42' } });
   * res.setEncoding('utf8').on('data', (chunk: string) => process.stdout.write(chunk));
   * ```
   */
  stream(path: string, options: { query?: RequestOptions['query']; headers?: Record<string, string>; timeoutMs?: number; unref?: boolean } = {}): Promise<IncomingMessage> {
    const url = this.#url(path, options.query);
    const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
    if (this.#token !== undefined && this.#token !== '') headers.authorization = `Bearer ${this.#token}`;
    if (this.#tenant !== undefined && this.#tenant !== '') headers['x-rampart-tenant'] = this.#tenant;
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method: 'GET', headers, agent: this.#agent }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => reject(this.#transportError(err)));
        res.on('end', () => {
          try {
            this.#interpret({ status, statusMessage: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
          } catch (err) {
            reject(err);
          }
        });
      });
      const { timeoutMs, unref } = options;
      req.on('socket', (socket) => {
        if (unref) socket.unref();
        if (timeoutMs === undefined) return;
        const onTimeout = () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`));
        socket.setTimeout(timeoutMs, onTimeout);
        req.once('response', () => socket.setTimeout(0).removeListener('timeout', onTimeout));
      });
      req.on('error', (err) => reject(this.#transportError(err)));
      req.end();
    });
  }

  /**
   * Reports whether the server is up and which store it uses. Needs no token.
   *
   * @example
   * ```ts
   * const { status, version } = await client.health();
   * ```
   */
  health(): Promise<HealthStatus> {
    return this.request<HealthStatus>('GET', '/v1/health');
  }

  /**
   * Creates a tenant. Fails with code `tenant.exists` if the name is taken.
   *
   * @example
   * ```ts
   * const tenant = await client.createTenant('acme');
   * ```
   */
  createTenant(name: string): Promise<Tenant> {
    return this.request<Tenant>('POST', '/v1/tenants', { body: { name } });
  }

  /**
   * Lists tenants one page at a time.
   *
   * @example
   * ```ts
   * const { items, next_cursor } = await client.listTenants({ limit: 50 });
   * ```
   */
  listTenants(options: PageOptions = {}): Promise<Page<Tenant>> {
    return this.request<Page<Tenant>>('GET', '/v1/tenants', {
      query: { limit: options.limit, cursor: options.cursor },
    });
  }

  /**
   * Creates a token in the current tenant. The returned `token` is the only copy of the secret.
   *
   * @example
   * ```ts
   * const { token, accessor } = await client.createToken({ ttl: '1h', policies: ['admin'], displayName: 'ci' });
   * ```
   */
  createToken(request: CreateTokenRequest = {}): Promise<CreatedToken> {
    const body: Record<string, unknown> = { policies: request.policies ?? [] };
    if (request.ttl !== undefined) body.ttl = request.ttl;
    if (request.displayName !== undefined) body.display_name = request.displayName;
    return this.request<CreatedToken>('POST', '/v1/tokens', { body });
  }

  /**
   * Looks up a token by accessor, or the caller's own token when no accessor is given.
   *
   * @example
   * ```ts
   * const me = await client.lookupToken();
   * const other = await client.lookupToken('acc_123');
   * ```
   */
  lookupToken(accessor?: string): Promise<TokenInfo> {
    const path = accessor === undefined ? '/v1/tokens/self' : `/v1/tokens/${encodeURIComponent(accessor)}`;
    return this.request<TokenInfo>('GET', path);
  }

  /**
   * Revokes a token by accessor; it stops working immediately.
   *
   * @example
   * ```ts
   * await client.revokeToken(created.accessor);
   * ```
   */
  async revokeToken(accessor: string): Promise<void> {
    await this.request<undefined>('DELETE', `/v1/tokens/${encodeURIComponent(accessor)}`);
  }

  /**
   * Reads audit events one page at a time, oldest first.
   *
   * @example
   * ```ts
   * const { items } = await client.listAuditEvents({ limit: 100 });
   * ```
   */
  listAuditEvents(options: AuditEventQuery = {}): Promise<AuditEventPage> {
    const { limit, cursor, since, until, principal, action, resource, outcome } = options;
    return this.request<AuditEventPage>('GET', '/v1/audit/events', {
      query: { limit, cursor, since, until, principal, action, resource, outcome },
    });
  }

  /**
   * HMACs a value with the audit log's salt, as the log records values that may be secret, so
   * an operator can find the events that mention it (Vault's `sys/audit-hash`).
   *
   * @example
   * ```ts
   * const { hash } = await client.auditHash('secret/data/payments');
   * const { items } = await client.listAuditEvents({ resource: hash });
   * ```
   */
  auditHash(input: string): Promise<{ hash: string }> {
    return this.request<{ hash: string }>('POST', '/v1/audit/hash', { body: { input } });
  }

  /**
   * Erases a data subject's personal data from the audit log by destroying the subject's keys
   * (crypto-shredding). Events, leaf hashes and proofs stay valid; their subject section reads
   * as erased from then on.
   *
   * @example
   * ```ts
   * const { keys_destroyed } = await client.eraseAuditSubject('alice@example.com');
   * ```
   */
  eraseAuditSubject(subject: string): Promise<{ subject_ref: string; keys_destroyed: number }> {
    return this.request<{ subject_ref: string; keys_destroyed: number }>('POST', '/v1/audit/erase', { body: { subject } });
  }

  /**
   * Reads the audit log's legal hold (operator tenant `default` only).
   *
   * @example
   * ```ts
   * const { enabled, reason, since } = await client.getLegalHold();
   * ```
   */
  getLegalHold(): Promise<LegalHold> {
    return this.request<LegalHold>('GET', '/v1/audit/legal-hold');
  }

  /**
   * Places (`enabled: true`) or releases the audit log's legal hold; while it is on, retention
   * prunes nothing. Operator tenant `default` only; the change is itself audited.
   *
   * @example
   * ```ts
   * await client.setLegalHold(true, 'litigation hold, case 2026-114');
   * ```
   */
  setLegalHold(enabled: boolean, reason: string): Promise<LegalHold> {
    return this.request<LegalHold>('POST', '/v1/audit/legal-hold', { body: { enabled, reason } });
  }

  /**
   * Has the server sign a CSR into an X.509-SVID. The private key never leaves the caller: only
   * the CSR's public key is used. Without `spiffeId`, a workload calling over mTLS renews its own.
   *
   * @example
   * ```ts
   * const svid = await client.signCertificate({ csr: csrPem, spiffeId: 'spiffe://default.rampart.local/ns/pay', ttl: '1h' });
   * await writeFile('svid.pem', svid.certificate + svid.ca_chain.join(''));
   * ```
   */
  signCertificate(request: SignCertificateRequest): Promise<SignedCertificate> {
    const body: Record<string, unknown> = { csr: request.csr };
    if (request.spiffeId !== undefined) body.spiffe_id = request.spiffeId;
    if (request.ttl !== undefined) body.ttl = request.ttl;
    return this.request<SignedCertificate>('POST', '/v1/pki/sign', { body });
  }

  /**
   * Revokes one certificate by serial, or every unexpired certificate of a SPIFFE ID, in the
   * current tenant.
   *
   * @example
   * ```ts
   * await client.revokeCertificate({ serialNumber: '5c22ea92…', reason: 'keyCompromise' });
   * await client.revokeCertificate({ spiffeId: 'spiffe://default.rampart.local/ns/pay' });
   * ```
   */
  revokeCertificate(request: RevokeCertificateRequest): Promise<RevocationResult> {
    const body: Record<string, unknown> = {};
    if (request.serialNumber !== undefined) body.serial_number = request.serialNumber;
    if (request.spiffeId !== undefined) body.spiffe_id = request.spiffeId;
    if (request.reason !== undefined) body.reason = request.reason;
    return this.request<RevocationResult>('POST', '/v1/pki/revoke', { body });
  }

  /**
   * Downloads the issuing CA's current CRL as PEM (`X509 CRL`). Needs no token.
   *
   * @example
   * ```ts
   * await writeFile('crl.pem', await client.crlPem());
   * ```
   */
  async crlPem(): Promise<string> {
    const res = await this.#send('GET', this.#url('/v1/pki/crl', { format: 'pem' }), { accept: 'application/x-pem-file, application/problem+json' }, undefined);
    if (res.status !== 200) return this.#interpret<never>(res);
    if (!res.body.startsWith('-----BEGIN X509 CRL-----')) throw unexpected(res, 'the server did not answer with a PEM CRL');
    return res.body;
  }

  /**
   * The audit log's latest signed checkpoint (C2SP tlog-checkpoint as a signed note), exactly as
   * served. Needs no token. Verify it with a pinned key before trusting it (see
   * {@link RampartClient.verifyAuditInclusion}).
   *
   * @example
   * ```ts
   * const note = await client.auditCheckpoint(); // "rampart.local/audit/…\n41\n<base64 root>\n\n— …"
   * ```
   */
  auditCheckpoint(): Promise<string> {
    return this.#text('/v1/audit/tlog/checkpoint');
  }

  /**
   * The audit log's verifier key (`<origin>+<key id>+<base64>`). Needs no token. Fetching it from
   * the server you want to check proves nothing: pin the key you got out of band.
   *
   * @example
   * ```ts
   * const key = await client.auditVerifierKey(); // publish it in your runbook once
   * ```
   */
  async auditVerifierKey(): Promise<string> {
    return (await this.#text('/v1/audit/key')).trim();
  }

  /**
   * Inclusion proof of leaf `index` in the signed tree of `size` (default: the latest checkpoint).
   *
   * @example
   * ```ts
   * const { proof, size } = await client.auditInclusionProof(42);
   * ```
   */
  auditInclusionProof(index: number, size?: number): Promise<InclusionProof> {
    return this.request<InclusionProof>('GET', '/v1/audit/proof/inclusion', { query: { index, size } });
  }

  /**
   * Consistency proof from the signed tree of `from` to that of `to` (default: the latest).
   *
   * @example
   * ```ts
   * const { proof } = await client.auditConsistencyProof(witnessed.size);
   * ```
   */
  auditConsistencyProof(from: number, to?: number): Promise<ConsistencyProof> {
    return this.request<ConsistencyProof>('GET', '/v1/audit/proof/consistency', { query: { from, to } });
  }

  /**
   * Proves an audit event is in the log under a checkpoint signed by `verifierKey`; see
   * {@link verifyEventInclusion}. Throws an `AuditError` when anything does not verify.
   *
   * @example
   * ```ts
   * const [item] = (await client.listAuditEvents({ limit: 1 })).items;
   * await client.verifyAuditInclusion({ leafIndex: item!.leaf_index!, entry: JSON.stringify(item!.event), verifierKey: pinned });
   * ```
   */
  verifyAuditInclusion(check: EventInclusionCheck): Promise<VerifiedInclusion> {
    return verifyEventInclusion(this, check);
  }

  async #text(path: string): Promise<string> {
    const res = await this.#send('GET', this.#url(path, undefined), { accept: 'text/plain, application/problem+json' }, undefined);
    if (res.status !== 200) return this.#interpret<never>(res);
    return res.body;
  }

  /**
   * Closes pooled keep-alive connections. The client must not be used afterwards.
   *
   * @example
   * ```ts
   * client.close();
   * ```
   */
  close(): void {
    this.#agent.destroy();
  }

  #url(path: string, query: RequestOptions['query']): URL {
    const url = new URL(this.#base.href);
    url.pathname = `${this.#base.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  #send(method: string, url: URL, headers: Record<string, string>, payload: Buffer | undefined): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => reject(this.#transportError(err)));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      });
      req.setTimeout(this.#timeoutMs, () => {
        const err = Object.assign(new Error(`no response within ${this.#timeoutMs} ms`), { code: 'ETIMEDOUT' });
        req.destroy(err);
      });
      req.on('error', (err) => reject(this.#transportError(err)));
      req.end(payload);
    });
  }

  /** Turns a Node socket/TLS error into one that tells the user what to check, without secrets. */
  #transportError(err: Error): RampartTransportError {
    const code = (err as NodeJS.ErrnoException).code;
    const addr = this.#base.origin;
    let message: string;
    if (code !== undefined && CERT_ERROR_CODES.has(code)) {
      message =
        `TLS certificate of ${addr} could not be verified (${code}: ${err.message}); ` +
        'pass the server CA bundle with --ca-file or RAMPART_CACERT (it is <data-dir>/ca.pem on the server)';
    } else if (code !== undefined && UNREACHABLE_CODES.has(code)) {
      message = `Cannot connect to ${addr} (${code}): is the server running at ${addr}? Check --addr / RAMPART_ADDR`;
    } else if (code === 'ETIMEDOUT') {
      message = `Request to ${addr} timed out after ${this.#timeoutMs} ms: is the server running and reachable?`;
    } else if (code?.startsWith('ERR_SSL') || code?.startsWith('ERR_TLS') || code === 'EPROTO') {
      message = `TLS handshake with ${addr} failed (${code}): the server must speak TLS 1.3; check --addr and the server's TLS settings`;
    } else {
      message = `Request to ${addr} failed${code === undefined ? '' : ` (${code})`}: ${err.message}`;
    }
    return new RampartTransportError(message, code, err);
  }

  #interpret<T>(res: RawResponse): T {
    if (res.status >= 200 && res.status < 300) {
      if (res.status === 204 || res.body === '') return undefined as T;
      try {
        return JSON.parse(res.body) as T;
      } catch {
        throw unexpected(res, 'the server answered with a body that is not JSON');
      }
    }
    let problem: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(res.body);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        problem = parsed as Record<string, unknown>;
      }
    } catch {
      problem = undefined;
    }
    if (problem === undefined || typeof problem.code !== 'string') throw unexpected(res, undefined);
    const title = typeof problem.title === 'string' ? problem.title : res.statusMessage || `HTTP ${res.status}`;
    throw new RampartApiError({
      status: res.status,
      code: problem.code,
      title,
      detail: typeof problem.detail === 'string' ? problem.detail : title,
      requestId: typeof problem.request_id === 'string' ? problem.request_id : headerRequestId(res.headers),
      type: typeof problem.type === 'string' ? problem.type : undefined,
      problem,
    });
  }
}

function headerRequestId(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['x-request-id'];
  return typeof value === 'string' ? value : undefined;
}

/**
 * An answer that is not the API talking (a proxy's HTML page, a truncated body). A short excerpt
 * of the body goes into `detail` because it is usually the only clue to who answered.
 */
function unexpected(res: RawResponse, why: string | undefined): RampartApiError {
  const excerpt = res.body.replace(/\s+/g, ' ').trim().slice(0, 200);
  return new RampartApiError({
    status: res.status,
    code: 'client.unexpected_response',
    title: `Unexpected response: HTTP ${res.status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`,
    detail: why ?? (excerpt === '' ? 'empty body' : excerpt),
    requestId: headerRequestId(res.headers),
  });
}
