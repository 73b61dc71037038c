import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueSvid } from '../../src/pki/ca.js';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { parseListHead } from '../../src/server/vault/list-verb.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { refusal, vaultClient } from '../support/vault.js';

const run = promisify(execFile);

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Everything the server sent before closing the connection. */
  readonly text: string;
}

/**
 * Vault's `LIST` HTTP method (src/server/vault/list-verb.ts): node-vault's default verbs, curl
 * with a client certificate, and raw TLS sockets sending what a client should not.
 */
describe('the Vault LIST method', () => {
  let s: TestServer;
  let vault: ReturnType<typeof vaultClient>;
  let dir: string;

  async function events(): Promise<Record<string, unknown>[]> {
    await s.runtime.audit.flush();
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id').execute();
    return rows.map((r) => JSON.parse(r.payload) as Record<string, unknown>);
  }

  /** Sends bytes on a fresh TLS connection and reads until the server closes it. */
  function raw(payload: string | Buffer): Promise<{ text: string; answers: RawAnswer[] }> {
    const url = new URL(s.addr!);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port), ca: s.runtime.trustBundlePem }, () => socket.write(payload));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        resolve({ text, answers: parseAnswers(text) });
      });
    });
  }

  function head(lines: string[]): string {
    return `${lines.join('\r\n')}\r\n\r\n`;
  }

  const host = () => `Host: ${new URL(s.addr!).host}`;
  const token = () => `X-Vault-Token: ${s.adminToken}`;

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-list-verb-'));
    vault = vaultClient(s);
    await vault.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
    await vault.mount({ mount_point: 'old', type: 'kv', options: { version: '1' } });
    await vault.mount({ mount_point: 'transit', type: 'transit' });
    await vault.mount({ mount_point: 'database', type: 'database' });
    await vault.write('secret/data/app/db', { data: { password: 'p' } });
    await vault.write('secret/data/app/api/key', { data: { k: 'v' } });
    await vault.write('old/team/one', { v: '1' });
    await vault.write('old/team/two', { v: '2' });
    await vault.write('transit/keys/orders', {});
    await vault.write('database/config/down', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/x',
      username: 'u',
      password: 'p',
      allowed_roles: '*',
      verify_connection: false,
    });
    await vault.write('database/roles/ro', { db_name: 'down', creation_statements: 'CREATE ROLE "{{name}}"' });
    await vault.addPolicy({ name: 'reader', rules: 'path "secret/*" { capabilities = ["read", "list"] }' });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('node-vault with its default verbs', () => {
    it('lists KV v2 metadata with and without the trailing slash', async () => {
      expect((await vault.list('secret/metadata/app')).data.keys).toEqual(['api/', 'db']);
      expect((await vault.list('secret/metadata/app/')).data.keys).toEqual(['api/', 'db']);
      expect((await vault.list('secret/metadata')).data.keys).toEqual(['app/']);
      expect(await refusal(vault.list('secret/metadata/nothing'))).toEqual({ status: 404, body: { errors: [] } });
    });

    it('lists KV v1, transit keys, database roles and ACL policies', async () => {
      expect((await vault.list('old/team')).data.keys).toEqual(['one', 'two']);
      expect((await vault.list('transit/keys')).data.keys).toEqual(['orders']);
      expect((await vault.list('database/roles')).data.keys).toEqual(['ro']);
      const policies = (await vault.list('sys/policy')) as { data: { keys: string[] } };
      expect(policies.data.keys).toContain('reader');
    });

    it('lists with GET ?list=1 too, adding the slash the same way', async () => {
      const get = vaultClient(s, s.adminToken, undefined, { listVerb: 'GET' });
      expect((await get.list('secret/metadata/app')).data.keys).toEqual(['api/', 'db']);
      expect((await get.list('old/team')).data.keys).toEqual(['one', 'two']);
    });

    it('checks the ACL on the path with the slash, as Vault does', async () => {
      await vault.addPolicy({ name: 'folder', rules: 'path "secret/metadata/app/" { capabilities = ["list"] }' });
      const t = (await vault.tokenCreate({ policies: ['folder'] })) as { auth: { client_token: string } };
      vault.token = s.adminToken;
      const limited = vaultClient(s, t.auth.client_token);
      expect((await limited.list('secret/metadata/app')).data.keys).toEqual(['api/', 'db']);
      expect(await refusal(limited.read('secret/metadata/app'))).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    });
  });

  it('records exactly one audit event per LIST, as a list of the slashed path', async () => {
    const r = await raw(head(['LIST /v1/secret/metadata/app HTTP/1.1', host(), token()]));
    expect(r.answers).toHaveLength(1);
    const [a] = r.answers;
    expect(a!.status).toBe(200);
    expect(a!.headers.connection).toBe('close');
    expect(JSON.parse(a!.body)).toMatchObject({ data: { keys: ['api/', 'db'] } });
    const mine = (await events()).filter((e) => e.request_id === a!.headers['x-request-id']);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ action: 'vault:list', resource: { type: 'Rampart::VaultPath', id: 'secret/metadata/app/' }, outcome: 'success' });
  });

  it('merges list=true into an existing query', async () => {
    const r = await raw(head(['LIST /v1/secret/metadata/app/?after=api%2F HTTP/1.1', host(), token()]));
    expect(JSON.parse(r.answers[0]!.body)).toMatchObject({ data: { keys: ['db'] } });
  });

  it('authenticates an mTLS-only caller by its client certificate (curl -X LIST)', async () => {
    const keys = await generateKeyPair('ecdsa-p256');
    const leaf = await issueSvid(s.runtime.ca.intermediate, { publicKey: keys.publicKey, spiffeId: parseSpiffeId('spiffe://default.rampart.local/ns/pay/sa/api').id, clock: s.clock, ttlMs: 3_600_000 });
    writeFileSync(join(dir, 'w.pem'), `${leaf.toString('pem')}\n${s.runtime.ca.intermediate.certificate.toString('pem')}\n`);
    writeFileSync(join(dir, 'w-key.pem'), await exportPrivateKeyPkcs8Pem(keys.privateKey), { mode: 0o600 });
    const before = (await events()).length;
    const { stdout } = await run('curl', ['-sS', '-i', '--cacert', s.runtime.files.trustBundle, '--cert', join(dir, 'w.pem'), '--key', join(dir, 'w-key.pem'), '-X', 'LIST', `${s.addr}/v1/secret/metadata/app`]);
    const [a] = parseAnswers(stdout);
    // The workload is authenticated (no Vault policy grants it the path, so Cedar denies it).
    expect(a!.status).toBe(403);
    expect(JSON.parse(a!.body)).toEqual({ errors: ['permission denied'] });
    const added = (await events()).slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ outcome: 'denied', action: 'vault:list', principal: { auth_method: 'mtls', id: 'spiffe://default.rampart.local/ns/pay/sa/api' } });
  });

  it('answers a bad token on a LIST as Vault does', async () => {
    const r = await raw(head(['LIST /v1/secret/metadata/app HTTP/1.1', host(), 'X-Vault-Token: rpt.nope']));
    expect(r.answers[0]!.status).toBe(403);
    expect(JSON.parse(r.answers[0]!.body)).toEqual({ errors: ['permission denied'] });
  });

  it('serves a LIST after a completed request on the same connection, then closes', async () => {
    const url = new URL(s.addr!);
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port), ca: s.runtime.trustBundlePem }, () =>
        socket.write(head(['GET /v1/sys/health HTTP/1.1', host()])),
      );
      let got = '';
      socket.on('data', (c: Buffer) => {
        const first = got === '';
        got += c.toString('latin1');
        if (first) socket.write(head(['LIST /v1/old/team HTTP/1.1', host(), token()]));
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(got));
    });
    const answers = parseAnswers(text);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(JSON.parse(answers[1]!.body)).toMatchObject({ data: { keys: ['one', 'two'] } });
  });

  describe('refuses, audited and in Vault’s shape, a LIST it cannot dispatch safely', () => {
    const cases: [string, () => string][] = [
      ['with a body', () => `${head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), token(), 'Content-Length: 2'])}{}`],
      ['with a chunked body', () => `${head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), token(), 'Transfer-Encoding: chunked'])}0\r\n\r\n`],
      ['with a request pipelined behind it', () => head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), token()]) + head(['GET /v1/secret/data/app/db HTTP/1.1', host(), token()])],
      ['with a folded header', () => head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), token(), 'X-Other: a', ' b'])],
      ['with Host twice', () => head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), 'Host: evil.example', token()])],
      ['with the token twice', () => head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), token(), 'X-Vault-Token: rpt.other'])],
      ['without Host', () => head(['LIST /v1/secret/metadata/ HTTP/1.1', token()])],
      ['with a space before a colon', () => head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), 'Content-Length : 5', token()])],
      ['with a bare LF', () => `LIST /v1/secret/metadata/ HTTP/1.1\r\n${host()}\nX-A: b\r\n${token()}\r\n\r\n`],
      ['with non-ASCII bytes', () => head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), token(), 'X-Name: caf\u00e9'])],
      ['as HTTP/1.0', () => head(['LIST /v1/secret/metadata/ HTTP/1.0', host(), token()])],
      ['outside /v1/', () => head(['LIST /secret/metadata/ HTTP/1.1', host(), token()])],
      ['with a list parameter of its own', () => head(['LIST /v1/secret/metadata/?list=false HTTP/1.1', host(), token()])],
      ['with an incomplete head', () => `LIST /v1/secret/metadata/ HTTP/1.1\r\n${host()}\r\n`],
      ['with a byte before it', () => `\r\n${head(['LIST /v1/secret/metadata/ HTTP/1.1', host(), token()])}`],
    ];
    it.each(cases)('%s', async (_name, payload) => {
      const before = (await events()).length;
      const r = await raw(Buffer.from(payload(), 'latin1'));
      expect(r.answers).toHaveLength(1);
      const [a] = r.answers;
      expect(a!.status).toBe(400);
      expect(a!.headers['content-type']).toBe('application/json');
      expect(a!.headers.connection).toBe('close');
      const body = JSON.parse(a!.body) as { errors: string[] };
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]).not.toContain(s.adminToken);
      // Nothing was served: no secret and no second answer.
      expect(r.text).not.toContain('"keys"');
      expect(r.text).not.toContain('password');
      const added = (await events()).slice(before);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ tenant: 'default', principal: null, outcome: 'invalid', error_code: 'request.malformed_http', request_id: a!.headers['x-request-id'] });
      expect(JSON.stringify(added[0])).not.toContain(s.adminToken);
    });
  });

  it('answers any other method the parser refuses in problem+json, audited', async () => {
    const before = (await events()).length;
    const r = await raw(head(['BREW /v1/health HTTP/1.1', host()]));
    const [a] = r.answers;
    expect(a!.status).toBe(400);
    expect(a!.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(a!.body)).toMatchObject({ code: 'request.malformed_http', status: 400, request_id: a!.headers['x-request-id'] });
    expect((await events()).slice(before)).toEqual([expect.objectContaining({ error_code: 'request.malformed_http', outcome: 'invalid' })]);
  });

  it('answers a Vault client’s other malformed request in Vault’s shape', async () => {
    const r = await raw(head(['GET /v1/secret/data/app/db HTTP/1.1', host(), token(), 'Bad Header: x']));
    expect(r.answers[0]!.status).toBe(400);
    expect(JSON.parse(r.answers[0]!.body)).toEqual({ errors: ['The request is not well-formed HTTP/1.1'] });
  });
});

describe('parseListHead', () => {
  const base = ['LIST /v1/secret/metadata/ HTTP/1.1', 'Host: h'];
  const packet = (lines: string[], tail = '') => Buffer.from(`${lines.join('\r\n')}\r\n\r\n${tail}`, 'latin1');

  it('turns a LIST into GET with list=true, keeping the headers', () => {
    expect(parseListHead(packet([...base, 'X-Vault-Token: t']))).toEqual({
      url: '/v1/secret/metadata/?list=true',
      headers: { host: 'h', 'x-vault-token': 't' },
      rawHeaders: ['Host', 'h', 'X-Vault-Token', 't'],
    });
    expect(parseListHead(packet(['LIST /v1/a?after=b HTTP/1.1', 'Host: h', 'Content-Length: 0']))).toMatchObject({ url: '/v1/a?after=b&list=true' });
  });

  it('trims the blanks around a header value and keeps those inside it, and names no header in a refusal', () => {
    const blanks = ' \t'.repeat(1000);
    expect(parseListHead(packet([...base, `X-A:${blanks}x${blanks}y${blanks}`]))).toMatchObject({ headers: { 'x-a': `x${blanks}y` } });
    expect(parseListHead(packet([...base, 'X-Secret-Name: a', 'x-secret-name: b']))).toBe('a header appears more than once');
  });

  it('refuses anything after the head, whatever it is', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (tail) => {
        expect(typeof parseListHead(Buffer.concat([packet(base), Buffer.from(tail)]))).toBe('string');
      }),
    );
  });

  it('dispatches only GETs under /v1/ with list=true last, from any bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom('LIST ', '/v1/', ' HTTP/1.1', '\r\n', 'Host: h', ':', ' ', '?', 'list=', '&', '\r\n\r\n'), fc.string()), { maxLength: 12 }), (parts) => {
        const parsed = parseListHead(Buffer.from(parts.join(''), 'latin1'));
        if (typeof parsed === 'string') return;
        expect(parsed.url.startsWith('/v1/')).toBe(true);
        expect(parsed.url.endsWith('list=true')).toBe(true);
        expect(new URLSearchParams(parsed.url.split('?')[1]).getAll('list')).toEqual(['true']);
        expect(parsed.headers.host).toBeTruthy();
      }),
      { numRuns: 2000 },
    );
  });
});

/** Splits what a server sent into HTTP/1.1 answers (Content-Length framed, as Rampart frames them). */
function parseAnswers(text: string): RawAnswer[] {
  const out: RawAnswer[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) break;
    const lines = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const body = rest.slice(end + 4, end + 4 + length);
    out.push({ status: Number(lines[0]!.split(' ')[1]), headers, body, text: rest.slice(0, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}
