import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodeVault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { runTool } from '../support/processes.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The transit engine as Vault's own clients and tools we did not write see it: node-vault drives
 * every transit path against a listening server, and openssl verifies the signatures with the
 * public keys the key read publishes.
 */
describe.each(TEST_DATABASES)('Vault transit through node-vault on $name', (database) => {
  let s: TestServer;
  let vault: nodeVault.client;
  let dir: string;
  const b64 = (text: string) => Buffer.from(text).toString('base64');

  beforeAll(async () => {
    s = await startTestServer({ listen: true, database });
    vault = nodeVault({ endpoint: s.addr!, token: s.adminToken, requestOptions: { ca: s.runtime.trustBundlePem } });
    await vault.mount({ mount_point: 'transit', type: 'transit' });
    dir = mkdtempSync(join(tmpdir(), 'rampart-transit-interop-'));
  });
  afterAll(async () => {
    await s?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The Vault error a call fails with: status and `errors`. */
  async function refusal(call: Promise<unknown>): Promise<{ status: number; errors: string[] }> {
    try {
      await call;
    } catch (err) {
      const response = (err as { response?: { statusCode: number; body: { errors: string[] } } }).response;
      if (response) return { status: response.statusCode, errors: response.body.errors };
      throw err;
    }
    throw new Error('the call succeeded');
  }

  it('creates, reads and lists keys', async () => {
    const created = await vault.write('transit/keys/orders', {});
    expect(created.data).toMatchObject({ name: 'orders', type: 'aes256-gcm96', latest_version: 1, deletion_allowed: false });
    await vault.write('transit/keys/signer-ec', { type: 'ecdsa-p256' });
    const read = await vault.read('transit/keys/orders');
    expect(read.data).toMatchObject({ name: 'orders', supports_encryption: true, min_decryption_version: 1 });
    expect(read.mount_type).toBe('transit');
    const listed = await vault.read('transit/keys?list=true');
    expect(listed.data.keys).toEqual(['orders', 'signer-ec']);
    expect((await refusal(vault.read('transit/keys/nope'))).status).toBe(404);
  });

  it('encrypts and decrypts, single and batch, and upserts a key on first encrypt', async () => {
    const enc = await vault.write('transit/encrypt/orders', { plaintext: b64('card 4111') });
    expect(enc.data.ciphertext).toMatch(/^vault:v1:[A-Za-z0-9+/]+=*$/);
    expect(enc.data.key_version).toBe(1);
    expect((await vault.write('transit/decrypt/orders', { ciphertext: enc.data.ciphertext })).data.plaintext).toBe(b64('card 4111'));

    const batch = await vault.write('transit/encrypt/orders', { batch_input: [{ plaintext: b64('a'), reference: 'first' }, { plaintext: b64('b') }] });
    expect(batch.data.batch_results).toHaveLength(2);
    expect(batch.data.batch_results[0].reference).toBe('first');
    const opened = await vault.write('transit/decrypt/orders', { batch_input: batch.data.batch_results.map((r: { ciphertext: string }) => ({ ciphertext: r.ciphertext })) });
    expect(opened.data.batch_results).toEqual([{ plaintext: b64('a') }, { plaintext: b64('b') }]);

    const upserted = await vault.write('transit/encrypt/created-on-use', { plaintext: b64('x'), type: 'chacha20-poly1305' });
    expect(upserted.data.ciphertext).toMatch(/^vault:v1:/);
    expect((await vault.read('transit/keys/created-on-use')).data.type).toBe('chacha20-poly1305');
  });

  it('refuses tampered ciphertexts with one Vault-style error, whatever was tampered', async () => {
    const { data } = await vault.write('transit/encrypt/orders', { plaintext: b64('secret') });
    const body = data.ciphertext.slice('vault:v1:'.length);
    const raw = Buffer.from(body, 'base64');
    raw[raw.length - 1]! ^= 1;
    for (const ciphertext of [`vault:v1:${raw.toString('base64')}`, `vault:v9:${body}`, `vault:v1:${body.slice(1)}`, `vault:v1:!${body.slice(1)}`, 'garbage']) {
      expect(await refusal(vault.write('transit/decrypt/orders', { ciphertext }))).toEqual({ status: 400, errors: ['invalid ciphertext: unable to decrypt'] });
    }
    // Another key's ciphertext, and a key that does not exist.
    const other = await vault.write('transit/encrypt/created-on-use', { plaintext: b64('y') });
    expect(await refusal(vault.write('transit/decrypt/orders', { ciphertext: other.data.ciphertext }))).toEqual({ status: 400, errors: ['invalid ciphertext: unable to decrypt'] });
    expect((await refusal(vault.write('transit/decrypt/no-such-key', { ciphertext: data.ciphertext }))).status).toBe(404);
  });

  it('rotates, rewraps and enforces min_decryption_version', async () => {
    const v1 = await vault.write('transit/encrypt/orders', { plaintext: b64('old data') });
    const rotated = await vault.write('transit/keys/orders/rotate', {});
    expect(rotated.data.latest_version).toBe(2);
    const rewrapped = await vault.write('transit/rewrap/orders', { ciphertext: v1.data.ciphertext });
    expect(rewrapped.data.ciphertext).toMatch(/^vault:v2:/);
    await vault.write('transit/keys/orders/config', { min_decryption_version: 2 });
    const refused = await refusal(vault.write('transit/decrypt/orders', { ciphertext: v1.data.ciphertext }));
    expect(refused.status).toBe(400);
    expect(refused.errors[0]).toMatch(/min_decryption_version/);
    expect((await vault.write('transit/decrypt/orders', { ciphertext: rewrapped.data.ciphertext })).data.plaintext).toBe(b64('old data'));
  });

  it('keeps derived keys apart by context', async () => {
    await vault.write('transit/keys/per-user', { derived: true });
    const context = b64('user-7');
    const enc = await vault.write('transit/encrypt/per-user', { plaintext: b64('hers'), context });
    expect((await vault.write('transit/decrypt/per-user', { ciphertext: enc.data.ciphertext, context })).data.plaintext).toBe(b64('hers'));
    expect(await refusal(vault.write('transit/decrypt/per-user', { ciphertext: enc.data.ciphertext, context: b64('user-8') }))).toEqual({
      status: 400,
      errors: ['invalid ciphertext: unable to decrypt'],
    });
    expect((await refusal(vault.write('transit/decrypt/per-user', { ciphertext: enc.data.ciphertext }))).status).toBe(400);
  });

  it('hands out data keys, random bytes, hashes and HMACs', async () => {
    const dk = await vault.write('transit/datakey/plaintext/orders', { bits: 256 });
    expect(Buffer.from(dk.data.plaintext, 'base64')).toHaveLength(32);
    expect((await vault.write('transit/decrypt/orders', { ciphertext: dk.data.ciphertext })).data.plaintext).toBe(dk.data.plaintext);
    expect((await vault.write('transit/datakey/wrapped/orders', {})).data.plaintext).toBeUndefined();
    expect((await vault.write('transit/random/16', { format: 'hex' })).data.random_bytes).toMatch(/^[0-9a-f]{32}$/);
    const mac = await vault.write('transit/hmac/orders/sha2-256', { input: b64('msg') });
    expect(mac.data.hmac).toMatch(/^vault:v2:/);
    expect((await vault.write('transit/verify/orders/sha2-256', { input: b64('msg'), hmac: mac.data.hmac })).data.valid).toBe(true);
    expect((await vault.write('transit/verify/orders/sha2-256', { input: b64('msh'), hmac: mac.data.hmac })).data.valid).toBe(false);

    writeFileSync(join(dir, 'hash-input'), 'hash me');
    const sum = (await vault.write('transit/hash/sha2-512', { input: b64('hash me') })).data.sum;
    const openssl = await runTool('openssl', ['dgst', '-sha512', '-r', join(dir, 'hash-input')]);
    expect(openssl.stdout.split(' ')[0]).toBe(sum);
  });

  it('signs with ecdsa-p256, ed25519 and rsa-2048 in ways openssl verifies', async () => {
    const message = join(dir, 'message');
    writeFileSync(message, 'signed by rampart transit');
    const input = b64('signed by rampart transit');

    // ECDSA P-256, DER signature (asn1 marshaling): openssl dgst.
    const ecPub = (await vault.read('transit/keys/signer-ec')).data.keys['1'].public_key as string;
    writeFileSync(join(dir, 'ec.pem'), ecPub);
    const ecSig = (await vault.write('transit/sign/signer-ec/sha2-256', { input })).data.signature as string;
    writeFileSync(join(dir, 'ec.sig'), Buffer.from(ecSig.replace('vault:v1:', ''), 'base64'));
    const ecCheck = await runTool('openssl', ['dgst', '-sha256', '-verify', join(dir, 'ec.pem'), '-signature', join(dir, 'ec.sig'), message]);
    expect(ecCheck.stdout.trim()).toBe('Verified OK');
    expect((await vault.write('transit/verify/signer-ec/sha2-256', { input, signature: ecSig })).data.valid).toBe(true);

    // Ed25519: the published raw key, as SPKI PEM for openssl pkeyutl -rawin.
    await vault.write('transit/keys/signer-ed', { type: 'ed25519' });
    const edRaw = (await vault.read('transit/keys/signer-ed')).data.keys['1'].public_key as string;
    const edPem = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(edRaw, 'base64').toString('base64url') }, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    writeFileSync(join(dir, 'ed.pem'), edPem);
    const edSig = (await vault.write('transit/sign/signer-ed', { input })).data.signature as string;
    writeFileSync(join(dir, 'ed.sig'), Buffer.from(edSig.replace('vault:v1:', ''), 'base64'));
    const edCheck = await runTool('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'ed.pem'), '-rawin', '-in', message, '-sigfile', join(dir, 'ed.sig')]);
    expect(edCheck.stdout.trim()).toBe('Signature Verified Successfully');

    // RSA-2048 with PSS (Vault's default) and PKCS#1 v1.5.
    await vault.write('transit/keys/signer-rsa', { type: 'rsa-2048' });
    writeFileSync(join(dir, 'rsa.pem'), (await vault.read('transit/keys/signer-rsa')).data.keys['1'].public_key);
    const pss = (await vault.write('transit/sign/signer-rsa/sha2-256', { input })).data.signature as string;
    writeFileSync(join(dir, 'pss.sig'), Buffer.from(pss.replace('vault:v1:', ''), 'base64'));
    const pssCheck = await runTool('openssl', [
      'dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:-2', '-verify', join(dir, 'rsa.pem'), '-signature', join(dir, 'pss.sig'), message,
    ]);
    expect(pssCheck.stdout.trim()).toBe('Verified OK');
    const v15 = (await vault.write('transit/sign/signer-rsa/sha2-384', { input, signature_algorithm: 'pkcs1v15' })).data.signature as string;
    writeFileSync(join(dir, 'v15.sig'), Buffer.from(v15.replace('vault:v1:', ''), 'base64'));
    const v15Check = await runTool('openssl', ['dgst', '-sha384', '-verify', join(dir, 'rsa.pem'), '-signature', join(dir, 'v15.sig'), message]);
    expect(v15Check.stdout.trim()).toBe('Verified OK');
    // A tampered message does not verify.
    writeFileSync(join(dir, 'tampered'), 'signed by someone else');
    const bad = await runTool('openssl', ['dgst', '-sha384', '-verify', join(dir, 'rsa.pem'), '-signature', join(dir, 'v15.sig'), join(dir, 'tampered')]);
    expect(bad.stdout.trim()).toBe('Verification failure');
  });

  it('exports an exportable key whose private half openssl matches to the published public key', async () => {
    await vault.write('transit/keys/portable', { type: 'ecdsa-p256', exportable: true });
    const exported = await vault.read('transit/export/signing-key/portable');
    expect(exported.data).toMatchObject({ name: 'portable', type: 'ecdsa-p256' });
    writeFileSync(join(dir, 'portable-key.pem'), exported.data.keys['1']);
    const derived = await runTool('openssl', ['ec', '-in', join(dir, 'portable-key.pem'), '-pubout']);
    expect(derived.stdout).toBe((await vault.read('transit/keys/portable')).data.keys['1'].public_key);
    expect((await refusal(vault.read('transit/export/signing-key/signer-ec'))).status).toBe(400);
  });

  it('deletes a key only once deletion_allowed is set', async () => {
    expect((await refusal(vault.delete('transit/keys/created-on-use'))).status).toBe(400);
    await vault.write('transit/keys/created-on-use/config', { deletion_allowed: true });
    await vault.delete('transit/keys/created-on-use');
    expect((await refusal(vault.read('transit/keys/created-on-use'))).status).toBe(404);
  });

  it('keeps tenants apart: another tenant\'s key of the same name does not open our ciphertexts, nor can it reach our mount', async () => {
    const operator = { authorization: `Bearer ${s.adminToken}` };
    expect((await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: operator, payload: { name: 'globex' } })).statusCode).toBe(201);
    const minted = await s.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...operator, 'x-rampart-tenant': 'globex' },
      payload: { policies: ['admin'], ttl: '1h' },
    });
    const globex = nodeVault({ endpoint: s.addr!, token: (minted.json() as { token: string }).token, requestOptions: { ca: s.runtime.trustBundlePem } });
    const ours = await vault.write('transit/encrypt/orders', { plaintext: b64('default tenant data') });
    // No transit mount in globex yet: our mount path means nothing there.
    expect((await refusal(globex.write('transit/decrypt/orders', { ciphertext: ours.data.ciphertext }))).status).toBe(404);
    await globex.mount({ mount_point: 'transit', type: 'transit' });
    await globex.write('transit/keys/orders', {});
    expect(await refusal(globex.write('transit/decrypt/orders', { ciphertext: ours.data.ciphertext }))).toEqual({ status: 400, errors: ['invalid ciphertext: unable to decrypt'] });
    expect((await globex.read('transit/keys?list=true')).data.keys).toEqual(['orders']);
  });

  it('refuses bad input with a clear 400 and audits the refusal with its code', async () => {
    const bad = [
      ['transit/encrypt/orders', { plaintext: 42 }],
      ['transit/encrypt/orders', { plaintext: b64('x'), key_verison: 1 }],
      ['transit/encrypt/orders', { plaintext: 'not base64!' }],
      ['transit/keys/bad%20name', {}],
      ['transit/decrypt/orders', { batch_input: Array.from({ length: 1001 }, () => ({ ciphertext: 'vault:v1:AAAA' })) }],
      ['transit/sign/signer-ec', { input: b64('x'), hash_algorithm: 'md5' }],
      ['transit/datakey/plaintext/orders', { bits: 1024 }],
      ['transit/random/0', {}],
    ] as const;
    for (const [path, body] of bad) expect((await refusal(vault.write(path, body))).status, path).toBe(400);
    expect((await refusal(vault.write('transit/encrypt/orders', { plaintext: b64('x'), key_verison: 1 }))).errors).toEqual(['unknown field(s): key_verison']);

    await refusal(vault.write('transit/decrypt/orders', { ciphertext: 'vault:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }));
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(1).execute();
    const event = JSON.parse(rows[0]!.payload) as { outcome: string; error_code: string; http: { status: number } };
    expect(event).toMatchObject({ outcome: 'invalid', error_code: 'transit.decrypt_failed', http: { status: 400 } });
  });

  it('audits every transit request without plaintext, ciphertext or key material', async () => {
    const marker = 'do-not-log-this-plaintext';
    const enc = await vault.write('transit/encrypt/orders', { plaintext: b64(marker) });
    await vault.write('transit/decrypt/orders', { ciphertext: enc.data.ciphertext });
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').execute();
    const transit = rows.map((r) => r.payload).filter((p) => p.includes('transit/'));
    expect(transit.length).toBeGreaterThan(10);
    for (const payload of transit) {
      expect(payload).not.toContain(b64(marker));
      expect(payload).not.toContain(enc.data.ciphertext.slice(9, 30));
    }
    const last = JSON.parse(transit[transit.length - 1]!) as { details?: Record<string, unknown>; outcome: string };
    expect(last.outcome).toBe('success');
    expect(last.details).toMatchObject({ key: 'orders' });
  });

  it('asks the Vault ACL for update on existing keys and create for keys an encrypt would create', async () => {
    await vault.write('sys/policy/encrypt-only', { policy: 'path "transit/encrypt/orders" { capabilities = ["update"] }\npath "transit/encrypt/new-*" { capabilities = ["update"] }' });
    const created = await vault.tokenCreate({ policies: ['encrypt-only'] });
    const app = nodeVault({ endpoint: s.addr!, token: created.auth.client_token, requestOptions: { ca: s.runtime.trustBundlePem } });
    const enc = await app.write('transit/encrypt/orders', { plaintext: b64('app data') });
    expect(enc.data.ciphertext).toMatch(/^vault:v2:/);
    expect((await refusal(app.write('transit/decrypt/orders', { ciphertext: enc.data.ciphertext }))).status).toBe(403);
    // Encrypting to a key that does not exist would create it: that needs `create`, which the policy lacks.
    expect((await refusal(app.write('transit/encrypt/new-key', { plaintext: b64('x') }))).status).toBe(403);
    expect(await s.runtime.stores.transitKeys.get({ tenant: 'default', mount: (await s.runtime.stores.mounts.list('default')).find((m) => m.path === 'transit')!.accessor, name: 'new-key' })).toBeUndefined();
    expect((await refusal(app.write('transit/keys/orders/rotate', {}))).status).toBe(403);
    // An ACL policy adds to the tenant's policies; the administrator keeps every path. (node-vault's
    // tokenCreate switched the client to the token it created, so switch back first.)
    vault.token = s.adminToken;
    expect((await vault.read('transit/keys/orders')).data.latest_version).toBe(2);
  });
});
