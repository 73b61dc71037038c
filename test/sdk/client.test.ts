import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RampartApiError, RampartClient, RampartTransportError } from '../../src/sdk/index.js';
import { createTestPki, type FakeServer, startFakeServer, type TestPki } from './fake-server.js';

let pki: TestPki;
let server: FakeServer;
const clients: RampartClient[] = [];

function client(options: Partial<ConstructorParameters<typeof RampartClient>[0]> = {}): RampartClient {
  const c = new RampartClient({ addr: server.url, caPem: pki.caPem, token: server.validToken, ...options });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  pki = await createTestPki();
  server = await startFakeServer(pki);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  server.override = undefined;
});

afterAll(async () => {
  await server.close();
});

describe('RampartClient requests', () => {
  it('health() sends an anonymous-capable GET and returns the parsed body', async () => {
    const health = await client({ token: undefined }).health();
    expect(health).toEqual({ status: 'ok', version: '0.1.0', store: 'sqlite' });
    const req = server.last();
    expect(req.method).toBe('GET');
    expect(req.path).toBe('/v1/health');
    expect(req.body).toBeUndefined();
    expect(req.headers.authorization).toBeUndefined();
    expect(req.headers['content-type']).toBeUndefined();
    expect(req.headers.accept).toContain('application/json');
  });

  it('createTenant() sends POST with a JSON body, the Bearer token and the tenant header', async () => {
    const tenant = await client({ tenant: 'acme-parent' }).createTenant('acme');
    expect(tenant).toEqual({ name: 'acme', created_at: '2026-01-01T00:00:00.000Z' });
    const req = server.last();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/tenants');
    expect(req.headers.authorization).toBe(`Bearer ${server.validToken}`);
    expect(req.headers['x-rampart-tenant']).toBe('acme-parent');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toEqual({ name: 'acme' });
  });

  it('listTenants() passes limit and cursor as query parameters and omits unset ones', async () => {
    await client().listTenants();
    expect(server.last().query).toEqual({});
    const page = await client().listTenants({ limit: 1, cursor: '0' });
    expect(server.last()).toMatchObject({ method: 'GET', path: '/v1/tenants', query: { limit: '1', cursor: '0' } });
    expect(page.items).toHaveLength(1);
    expect(page.next_cursor).toBe('1');
  });

  it('createToken() maps displayName to display_name and defaults policies to []', async () => {
    const created = await client().createToken({ ttl: '1h', policies: ['admin'], displayName: 'ci' });
    expect(server.last()).toMatchObject({ method: 'POST', path: '/v1/tokens' });
    expect(server.last().body).toEqual({ ttl: '1h', policies: ['admin'], display_name: 'ci' });
    expect(created.token).toMatch(/^rmp_secret_/);
    expect(created.policies).toEqual(['admin']);

    await client().createToken();
    expect(server.last().body).toEqual({ policies: [] });
  });

  it('lookupToken() reads self without an accessor and escapes a given accessor', async () => {
    const self = await client().lookupToken();
    expect(server.last()).toMatchObject({ method: 'GET', path: '/v1/tokens/self' });
    expect(self.accessor).toBe('acc_root');

    await expect(client().lookupToken('a/b')).rejects.toMatchObject({ code: 'token.not_found', status: 404 });
    expect(server.last().path).toBe('/v1/tokens/a%2Fb');
  });

  it('revokeToken() sends DELETE and resolves to undefined on 204', async () => {
    const created = await client().createToken({ policies: [] });
    await expect(client().revokeToken(created.accessor)).resolves.toBeUndefined();
    expect(server.last()).toMatchObject({ method: 'DELETE', path: `/v1/tokens/${created.accessor}` });
  });

  it('listAuditEvents() returns a page of events', async () => {
    const page = await client().listAuditEvents({ limit: 2 });
    expect(server.last()).toMatchObject({ method: 'GET', path: '/v1/audit/events', query: { limit: '2' } });
    expect(page.items).toHaveLength(2);
    expect(page.next_cursor).toBe('2');
  });

  it('keeps a path prefix in the address', async () => {
    server.override = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.path }));
      return true;
    };
    await expect(client({ addr: `${server.url}/proxy/` }).request('GET', '/v1/health')).resolves.toEqual({
      path: '/proxy/v1/health',
    });
  });

  it('presents a client certificate for mutual TLS', async () => {
    await client({ clientCert: { certPem: pki.clientCertPem, keyPem: pki.clientKeyPem } }).health();
    expect(server.last().clientCn).toBe('workload-a');
  });
});

describe('RampartClient errors', () => {
  it('turns a problem+json answer into RampartApiError with its fields', async () => {
    await client().createTenant('dup');
    const err = await client()
      .createTenant('dup')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RampartApiError);
    expect(err).toMatchObject({
      status: 409,
      code: 'tenant.exists',
      title: 'A tenant with that name already exists',
      detail: 'tenant "dup" exists',
      requestId: 'req-123',
    });
  });

  it('never puts the token in an error message', async () => {
    const secret = 'rmp_wrong_secret_value';
    const err = (await client({ token: secret })
      .lookupToken()
      .catch((e: unknown) => e)) as RampartApiError;
    expect(err.code).toBe('auth.token_invalid');
    expect(err.status).toBe(401);
    expect(err.message).not.toContain(secret);
    expect(JSON.stringify(err)).not.toContain(secret);
  });

  it('falls back to client.unexpected_response for a non-JSON error body', async () => {
    server.override = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad gateway</body></html>');
      return true;
    };
    const err = (await client()
      .health()
      .catch((e: unknown) => e)) as RampartApiError;
    expect(err).toBeInstanceOf(RampartApiError);
    expect(err.status).toBe(502);
    expect(err.code).toBe('client.unexpected_response');
    expect(err.detail).toContain('Bad gateway');
  });

  it('reports a 2xx that is not JSON as client.unexpected_response', async () => {
    server.override = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
      return true;
    };
    await expect(client().health()).rejects.toMatchObject({ code: 'client.unexpected_response', status: 200 });
  });

  it('refuses a server whose certificate the given CA did not issue, and says which flag to pass', async () => {
    const err = (await client({ caPem: pki.otherCaPem })
      .health()
      .catch((e: unknown) => e)) as RampartTransportError;
    expect(err).toBeInstanceOf(RampartTransportError);
    expect(err.message).toContain('--ca-file');
    expect(err.message).toContain('RAMPART_CACERT');
    expect(err.cause).toBeInstanceOf(Error);
    expect(err.code).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it('refuses a server with no CA given (system roots do not trust it)', async () => {
    await expect(client({ caPem: undefined }).health()).rejects.toThrow(/RAMPART_CACERT/);
  });

  it('says to check the server when the connection is refused', async () => {
    const probe = https.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const err = (await client({ addr: `https://127.0.0.1:${port}` })
      .health()
      .catch((e: unknown) => e)) as RampartTransportError;
    expect(err).toBeInstanceOf(RampartTransportError);
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.message).toContain(`is the server running at https://127.0.0.1:${port}?`);
    expect(err.message).not.toContain(server.validToken);
  });

  it('gives up after timeoutMs when the server does not answer', async () => {
    server.override = () => true; // never responds
    await expect(client({ timeoutMs: 200 }).health()).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });

  it('rejects an address that is not an https URL', () => {
    expect(() => new RampartClient({ addr: 'http://127.0.0.1:8443' })).toThrow(/HTTPS/);
    expect(() => new RampartClient({ addr: 'not a url' })).toThrow(/Invalid server address/);
  });
});
