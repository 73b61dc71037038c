/**
 * A throwaway HTTPS server implementing just enough of the Rampart API contract to exercise the
 * SDK and the CLI without the real server: it records every request so tests can assert exactly
 * what the client sent. Certificates come from a throwaway CA generated per test file.
 */
import 'reflect-metadata';
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface TestPki {
  caPem: string;
  /** A CA that did not issue the server certificate, for trust-failure tests. */
  otherCaPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function selfSignedCa(cn: string): Promise<{ cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${cn}`,
    keys,
    signingAlgorithm: SIGNING,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, keys };
}

async function leaf(
  ca: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair },
  cn: string,
  usage: string,
  extra: x509.Extension[],
): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${cn}`,
    issuer: ca.cert.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: SIGNING,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      ...extra,
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

/** Generates a CA, a server certificate for 127.0.0.1/localhost, a client certificate and an unrelated CA. */
export async function createTestPki(): Promise<TestPki> {
  const ca = await selfSignedCa('Rampart Test CA');
  const other = await selfSignedCa('Somebody Else CA');
  const server = await leaf(ca, 'rampart-test-server', x509.ExtendedKeyUsage.serverAuth, [
    new x509.SubjectAlternativeNameExtension([
      { type: 'ip', value: '127.0.0.1' },
      { type: 'dns', value: 'localhost' },
    ]),
  ]);
  const client = await leaf(ca, 'workload-a', x509.ExtendedKeyUsage.clientAuth, []);
  return {
    caPem: ca.cert.toString('pem'),
    otherCaPem: other.cert.toString('pem'),
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    clientCertPem: client.certPem,
    clientKeyPem: client.keyPem,
  };
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, or `undefined` when there was none. */
  body: unknown;
  /** CN of a verified client certificate, when one was presented. */
  clientCn: string | undefined;
}

/** Lets a test take over a request (non-JSON answers, hangs); return `true` when handled. */
export type Override = (req: RecordedRequest, res: ServerResponse) => boolean;

export interface FakeServer {
  url: string;
  /** The token the server accepts. */
  validToken: string;
  requests: RecordedRequest[];
  override: Override | undefined;
  /** Requests received so far, newest last; convenience for the common single-request assertion. */
  last(): RecordedRequest;
  close(): Promise<void>;
}

const NOW = '2026-01-01T00:00:00.000Z';

interface TokenRecord {
  token: string;
  accessor: string;
  tenant: string;
  policies: string[];
  display_name: string | null;
  created_at: string;
  expires_at: string | null;
}

/** What the fake server answers; written to the socket in one place. */
interface Answer {
  status: number;
  body?: unknown;
  type?: string;
}

function json(status: number, body?: unknown): Answer {
  return { status, body, type: 'application/json' };
}

function problem(status: number, code: string, title: string, detail: string): Answer {
  return {
    status,
    body: { type: `https://rampart.dev/problems/${code}`, title, status, detail, code, request_id: 'req-123' },
    type: 'application/problem+json',
  };
}

function write(res: ServerResponse, answer: Answer): void {
  if (answer.body === undefined) res.writeHead(answer.status).end();
  else res.writeHead(answer.status, { 'content-type': answer.type ?? 'application/json' }).end(JSON.stringify(answer.body));
}

/** Starts the fake server on an ephemeral port of 127.0.0.1. */
export async function startFakeServer(pki: TestPki): Promise<FakeServer> {
  const validToken = 'rmp_test_root_token';
  const tenants = [{ name: 'default', created_at: NOW }];
  const tokens = new Map<string, Omit<TokenRecord, 'token'>>([
    [
      'acc_root',
      { accessor: 'acc_root', tenant: 'default', policies: ['root'], display_name: 'root', created_at: NOW, expires_at: null },
    ],
  ]);

  const state: FakeServer = {
    url: '',
    validToken,
    requests: [],
    override: undefined,
    last() {
      const req = state.requests.at(-1);
      if (req === undefined) throw new Error('no request recorded');
      return req;
    },
    close: async () => {},
  };

  function route(req: RecordedRequest): Answer {
    const { method, path } = req;
    if (method === 'GET' && path === '/v1/health') {
      return json(200, { status: 'ok', version: '0.1.0', store: 'sqlite' });
    }
    const bearer = req.headers.authorization?.replace(/^Bearer /, '') ?? req.headers['x-vault-token'];
    if (bearer === undefined) {
      return problem(401, 'auth.missing_credentials', 'No credentials were presented', 'send a token');
    }
    if (bearer !== validToken) {
      return problem(401, 'auth.token_invalid', 'The token is not recognised', 'the token is not recognised');
    }
    if (method === 'POST' && path === '/v1/tenants') {
      const name = (req.body as { name: string }).name;
      if (tenants.some((t) => t.name === name)) {
        return problem(409, 'tenant.exists', 'A tenant with that name already exists', `tenant "${name}" exists`);
      }
      const tenant = { name, created_at: NOW };
      tenants.push(tenant);
      return json(201, tenant);
    }
    if (method === 'GET' && path === '/v1/tenants') {
      const start = Number(req.query.cursor ?? 0);
      const limit = Number(req.query.limit ?? 50);
      const items = tenants.slice(start, start + limit);
      const next = start + limit < tenants.length ? String(start + limit) : null;
      return json(200, { items, next_cursor: next });
    }
    if (method === 'POST' && path === '/v1/tokens') {
      const body = req.body as { ttl?: string; policies: string[]; display_name?: string };
      const info = {
        accessor: `acc_${tokens.size}`,
        tenant: req.headers['x-rampart-tenant']?.toString() ?? 'default',
        policies: body.policies,
        display_name: body.display_name ?? null,
        created_at: NOW,
        expires_at: body.ttl === undefined ? null : '2026-01-01T01:00:00.000Z',
      };
      tokens.set(info.accessor, info);
      return json(201, { token: `rmp_secret_${tokens.size}`, ...info });
    }
    const tokenPath = /^\/v1\/tokens\/([^/]+)$/.exec(path);
    if (tokenPath?.[1] !== undefined) {
      const accessor = decodeURIComponent(tokenPath[1]);
      const info = accessor === 'self' ? tokens.get('acc_root') : tokens.get(accessor);
      if (info === undefined) return problem(404, 'token.not_found', 'No such token', `no token ${accessor}`);
      if (method === 'GET') return json(200, info);
      if (method === 'DELETE') {
        tokens.delete(accessor);
        return json(204);
      }
    }
    if (method === 'GET' && path === '/v1/audit/events') {
      return json(200, {
        items: [
          { seq: 1, action: 'tenant.create', tenant: 'default' },
          { seq: 2, action: 'token.create', tenant: 'default' },
        ],
        next_cursor: req.query.limit === '2' ? '2' : null,
      });
    }
    return problem(404, 'request.not_found', 'No such route', `${method} ${path}`);
  }

  const server = https.createServer(
    {
      key: pki.serverKeyPem,
      cert: pki.serverCertPem,
      ca: pki.caPem,
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'https://127.0.0.1');
        const raw = Buffer.concat(chunks).toString('utf8');
        const socket = req.socket as TLSSocket;
        const recorded: RecordedRequest = {
          method: req.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body: raw === '' ? undefined : JSON.parse(raw),
          clientCn: socket.authorized ? String(socket.getPeerCertificate().subject?.CN) : undefined,
        };
        state.requests.push(recorded);
        if (!state.override?.(recorded, res)) write(res, route(recorded));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
