import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { Barrier } from '../../../src/secrets/barrier.js';
import type { EngineRequest, Mount, VaultMethod } from '../../../src/secrets/engine.js';
import { transitEngine } from '../../../src/secrets/transit/engine.js';
import { bindStores } from '../../../src/store/stores.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';

/**
 * The transit engine behind the Vault adapter: paths, payloads, batch results and the plan
 * (capabilities, writes) it gives the adapter, driven without HTTP.
 */
describe('transit engine', () => {
  const database = freshDatabase(TEST_DATABASES[0]!);
  const clock = new ManualClock();
  const barrier = new Barrier();
  let blob: string | undefined;
  const mount: Mount = {
    tenant: 'acme',
    path: 'transit',
    type: 'transit',
    accessor: 'transit_0001',
    description: '',
    options: {},
    defaultLeaseTtl: 0,
    maxLeaseTtl: 0,
    createdAt: clock.now().toISOString(),
  };
  const engine = transitEngine.create(mount);

  function request(method: VaultMethod, path: string, body: Record<string, unknown> = {}, query: Record<string, string> = {}): EngineRequest {
    return {
      method,
      path,
      query,
      tenant: 'acme',
      mount,
      stores: bindStores(database().db, database().dialect),
      body,
      contentType: 'application/json',
      principal: { type: 'Rampart::Token', id: 'accessor', tenant: 'acme', roles: ['admin'], authMethod: 'token', displayName: '' },
      requestId: 'req-1',
      clock,
      sealer: barrier,
    };
  }

  beforeAll(async () => {
    await barrier.unseal(randomBytes(32), { load: async () => blob, initialize: async (c) => ((blob = c), true) }, clock);
  });

  async function call(method: VaultMethod, path: string, body: Record<string, unknown> = {}, query: Record<string, string> = {}) {
    return engine.handle(request(method, path, body, query));
  }

  async function failure(method: VaultMethod, path: string, body: Record<string, unknown> = {}, query: Record<string, string> = {}) {
    return call(method, path, body, query).then(
      () => undefined,
      (e: { code: string; message: string }) => ({ code: e.code, message: e.message }),
    );
  }

  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('plans create for a new key and update for an existing one (Vault\'s existence check)', async () => {
    expect(await engine.plan(request('POST', 'keys/planned'))).toEqual({ capabilities: ['create'], writes: true });
    expect(await engine.plan(request('POST', 'encrypt/planned', { plaintext: '' }))).toEqual({ capabilities: ['create'], writes: true });
    await call('POST', 'keys/planned');
    expect(await engine.plan(request('POST', 'keys/planned'))).toEqual({ capabilities: ['update'], writes: true });
    expect(await engine.plan(request('POST', 'encrypt/planned'))).toEqual({ capabilities: ['update'], writes: false });
    expect(await engine.plan(request('POST', 'decrypt/planned'))).toEqual({ capabilities: ['update'], writes: false });
    expect(await engine.plan(request('GET', 'keys/planned'))).toEqual({ capabilities: ['read'], writes: false });
    expect(await engine.plan(request('LIST', 'keys'))).toEqual({ capabilities: ['list'], writes: false });
    expect(await engine.plan(request('DELETE', 'keys/planned'))).toEqual({ capabilities: ['delete'], writes: true });
    expect(await engine.plan(request('POST', 'keys/planned/rotate'))).toEqual({ capabilities: ['update'], writes: true });
  });

  it('answers unknown paths with secrets.not_found and wrong verbs with secrets.unsupported_operation', async () => {
    expect(await failure('POST', 'nope/x')).toMatchObject({ code: 'secrets.not_found' });
    expect(await failure('POST', 'keys/a/b/c')).toMatchObject({ code: 'secrets.not_found' });
    expect(await failure('GET', 'encrypt/planned')).toMatchObject({ code: 'secrets.unsupported_operation' });
    expect(await failure('POST', 'keys')).toMatchObject({ code: 'secrets.unsupported_operation' });
  });

  it('creates, reads and lists keys in Vault\'s shapes', async () => {
    const created = await call('POST', 'keys/signer', { type: 'ecdsa-p256' });
    expect(created.data).toMatchObject({ name: 'signer', type: 'ecdsa-p256', latest_version: 1, supports_signing: true, supports_encryption: false });
    expect((created.data!.keys as Record<string, { public_key: string }>)['1']!.public_key).toContain('BEGIN PUBLIC KEY');
    expect(created.audit).toMatchObject({ key: 'signer', type: 'ecdsa-p256', created: true });
    const read = await call('GET', 'keys/planned');
    expect(read.data).toMatchObject({ name: 'planned', type: 'aes256-gcm96', deletion_allowed: false, derived: false, exportable: false });
    expect((await call('LIST', 'keys')).data).toEqual({ keys: ['planned', 'signer'] });
    const page = await call('LIST', 'keys', {}, { limit: '1' });
    expect(page.data).toEqual({ keys: ['planned'] });
    expect(page.warnings?.[0]).toContain('after=planned');
    expect((await call('LIST', 'keys', {}, { after: 'planned' })).data).toEqual({ keys: ['signer'] });
    expect(await failure('LIST', 'keys', {}, { after: 'signer' })).toMatchObject({ code: 'secrets.not_found' });
    expect(await failure('POST', 'keys/bad', { type: 'aes128-gcm96' })).toMatchObject({ code: 'transit.invalid_request' });
    expect(await failure('POST', 'keys/bad', { type: 'aes256-gcm96', colour: 'blue' })).toMatchObject({ code: 'transit.invalid_request', message: 'unknown field(s): colour' });
    expect(await failure('GET', 'keys/absent')).toMatchObject({ code: 'transit.key_not_found' });
  });

  it('encrypts (creating the key on first use), decrypts and rewraps', async () => {
    const enc = await call('POST', 'encrypt/upserted', { plaintext: b64('hello') });
    expect(enc.data).toMatchObject({ ciphertext: expect.stringMatching(/^vault:v1:/), key_version: 1 });
    expect(enc.audit).toEqual({ key: 'upserted', key_version: 1 });
    expect(JSON.stringify(enc.audit)).not.toContain(b64('hello'));
    const dec = await call('POST', 'decrypt/upserted', { ciphertext: enc.data!.ciphertext });
    expect(dec.data).toEqual({ plaintext: b64('hello') });
    await call('POST', 'keys/upserted/rotate');
    const re = await call('POST', 'rewrap/upserted', { ciphertext: enc.data!.ciphertext });
    expect(re.data).toMatchObject({ ciphertext: expect.stringMatching(/^vault:v2:/), key_version: 2 });
    expect((await call('POST', 'decrypt/upserted', { ciphertext: re.data!.ciphertext })).data).toEqual({ plaintext: b64('hello') });
    expect(await failure('POST', 'encrypt/upserted', { plaintext: 'not base64!' })).toMatchObject({ code: 'transit.invalid_request' });
    expect(await failure('POST', 'encrypt/upserted', {})).toMatchObject({ code: 'transit.invalid_request', message: 'missing plaintext' });
    expect(await failure('POST', 'decrypt/missing-key', { ciphertext: enc.data!.ciphertext })).toMatchObject({ code: 'transit.key_not_found' });
    expect(await failure('POST', 'decrypt/planned', { ciphertext: enc.data!.ciphertext })).toMatchObject({ code: 'transit.decrypt_failed' });
  });

  it('creates a derived key when the first encrypt to a new name carries a context (Vault\'s upsert)', async () => {
    const context = b64('tenant-9');
    const enc = await call('POST', 'encrypt/upserted-derived', { plaintext: b64('bound'), context });
    expect((await call('GET', 'keys/upserted-derived')).data).toMatchObject({ derived: true, kdf: 'hkdf_sha256' });
    expect(await failure('POST', 'decrypt/upserted-derived', { ciphertext: enc.data!.ciphertext, context: b64('tenant-10') })).toMatchObject({ code: 'transit.decrypt_failed' });
    await call('POST', 'encrypt/upserted-derived-batch', { batch_input: [{ plaintext: b64('x'), context }] });
    expect((await call('GET', 'keys/upserted-derived-batch')).data).toMatchObject({ derived: true });
    expect(await failure('POST', 'encrypt/upserted-aes-derived', { plaintext: b64('x'), context, type: 'ed25519' })).toMatchObject({ code: 'transit.unsupported_operation' });
  });

  it('passes associated_data through encrypt, decrypt and rewrap', async () => {
    const associated_data = b64('order 7');
    const enc = await call('POST', 'encrypt/upserted', { plaintext: b64('paid'), associated_data });
    expect((await call('POST', 'decrypt/upserted', { ciphertext: enc.data!.ciphertext, associated_data })).data).toEqual({ plaintext: b64('paid') });
    expect(await failure('POST', 'decrypt/upserted', { ciphertext: enc.data!.ciphertext, associated_data: b64('order 8') })).toMatchObject({ code: 'transit.decrypt_failed' });
    const re = await call('POST', 'rewrap/upserted', { ciphertext: enc.data!.ciphertext, associated_data });
    expect((await call('POST', 'decrypt/upserted', { ciphertext: re.data!.ciphertext, associated_data })).data).toEqual({ plaintext: b64('paid') });
  });

  it('runs batches with per-item results, references and errors; 400 only when every item failed', async () => {
    const enc = await call('POST', 'encrypt/batch', {
      batch_input: [{ plaintext: b64('one'), reference: 'r1' }, { plaintext: b64('two') }, { plaintext: '%%%', reference: 'bad' }],
    });
    expect(enc.status).toBeUndefined();
    const results = enc.data!.batch_results as Array<Record<string, unknown>>;
    expect(results[0]).toMatchObject({ ciphertext: expect.stringMatching(/^vault:v1:/), key_version: 1, reference: 'r1' });
    expect(results[1]).toMatchObject({ ciphertext: expect.stringMatching(/^vault:v1:/), key_version: 1 });
    expect(results[2]).toEqual({ error: 'plaintext must be standard base64', reference: 'bad' });
    expect(enc.audit).toMatchObject({ key: 'batch', batch_size: 3, batch_failed: 1 });

    const tampered = String(results[1]!.ciphertext).slice(0, -4) + 'AAA=';
    const dec = await call('POST', 'decrypt/batch', {
      batch_input: [{ ciphertext: results[0]!.ciphertext }, { ciphertext: tampered }, { ciphertext: results[1]!.ciphertext }],
    });
    expect(dec.data!.batch_results).toEqual([{ plaintext: b64('one') }, { error: 'invalid ciphertext: unable to decrypt' }, { plaintext: b64('two') }]);

    const allBad = await call('POST', 'decrypt/batch', { batch_input: [{ ciphertext: tampered }] });
    expect(allBad.status).toBe(400);
    expect(await failure('POST', 'decrypt/batch', { batch_input: [] })).toMatchObject({ code: 'transit.invalid_request' });
    expect(await failure('POST', 'decrypt/batch', { batch_input: 'x' })).toMatchObject({ code: 'transit.invalid_request' });
    expect(await failure('POST', 'decrypt/batch', { batch_input: Array.from({ length: 1001 }, () => ({ ciphertext: tampered })) })).toMatchObject({
      code: 'transit.invalid_request',
    });
  });

  it('generates data keys, plaintext and wrapped', async () => {
    const plain = await call('POST', 'datakey/plaintext/planned', { bits: 512 });
    expect(Buffer.from(String(plain.data!.plaintext), 'base64')).toHaveLength(64);
    expect((await call('POST', 'decrypt/planned', { ciphertext: plain.data!.ciphertext })).data).toEqual({ plaintext: plain.data!.plaintext });
    const wrapped = await call('POST', 'datakey/wrapped/planned', {});
    expect(wrapped.data).not.toHaveProperty('plaintext');
    expect(Buffer.from(String((await call('POST', 'decrypt/planned', { ciphertext: wrapped.data!.ciphertext })).data!.plaintext), 'base64')).toHaveLength(32);
    expect(await failure('POST', 'datakey/plaintext/planned', { bits: 100 })).toMatchObject({ code: 'transit.invalid_request' });
  });

  it('signs and verifies, with the hash in the path or the body, single and batch', async () => {
    const input = b64('sign this');
    const sig = await call('POST', 'sign/signer/sha2-384', { input, marshaling_algorithm: 'jws' });
    expect(sig.data).toMatchObject({ signature: expect.stringMatching(/^vault:v1:[A-Za-z0-9_-]+$/), key_version: 1 });
    expect((await call('POST', 'verify/signer', { input, signature: sig.data!.signature, hash_algorithm: 'sha2-384', marshaling_algorithm: 'jws' })).data).toEqual({ valid: true });
    expect((await call('POST', 'verify/signer/sha2-256', { input, signature: sig.data!.signature, marshaling_algorithm: 'jws' })).data).toEqual({ valid: false });
    const batch = await call('POST', 'sign/signer', { hash_algorithm: 'sha2-512', batch_input: [{ input, reference: 'a' }, { input: b64('other') }] });
    const sigs = batch.data!.batch_results as Array<{ signature: string; reference?: string }>;
    expect(sigs[0]!.reference).toBe('a');
    const verified = await call('POST', 'verify/signer/sha2-512', {
      batch_input: [
        { input, signature: sigs[0]!.signature },
        { input, signature: sigs[1]!.signature },
      ],
    });
    expect(verified.data!.batch_results).toEqual([{ valid: true }, { valid: false }]);
    expect(await failure('POST', 'verify/signer', { input, signature: sig.data!.signature, hmac: 'vault:v1:x' })).toMatchObject({ code: 'transit.invalid_request' });
    expect(await failure('POST', 'sign/planned', { input })).toMatchObject({ code: 'transit.unsupported_operation' });
  });

  it('computes and verifies HMACs', async () => {
    const input = b64('mac me');
    const mac = await call('POST', 'hmac/planned/sha2-512', { input });
    expect(mac.data).toMatchObject({ hmac: expect.stringMatching(/^vault:v1:/), key_version: 1 });
    expect((await call('POST', 'verify/planned/sha2-512', { input, hmac: mac.data!.hmac })).data).toEqual({ valid: true });
    expect((await call('POST', 'verify/planned', { input, hmac: mac.data!.hmac })).data).toEqual({ valid: false });
  });

  it('hands out random bytes and hashes', async () => {
    expect(Buffer.from(String((await call('POST', 'random')).data!.random_bytes), 'base64')).toHaveLength(32);
    expect(String((await call('POST', 'random/16', { format: 'hex' })).data!.random_bytes)).toMatch(/^[0-9a-f]{32}$/);
    expect(Buffer.from(String((await call('POST', 'random/platform/8')).data!.random_bytes), 'base64')).toHaveLength(8);
    expect(Buffer.from(String((await call('POST', 'random', { bytes: 24 })).data!.random_bytes), 'base64')).toHaveLength(24);
    expect(await failure('POST', 'random/-1')).toMatchObject({ code: 'secrets.invalid_request' });
    expect(await failure('POST', 'random/999999999')).toMatchObject({ code: 'transit.invalid_request' });
    expect((await call('POST', 'hash/sha2-512', { input: b64('x'), format: 'base64' })).data!.sum).toHaveLength(88);
    expect((await call('POST', 'hash', { input: b64('abc') })).data).toEqual({ sum: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' });
  });

  it('exports only exportable keys, on GET, with the read capability', async () => {
    expect(await engine.plan(request('GET', 'export/signing-key/signer'))).toEqual({ capabilities: ['read'], writes: false });
    expect(await failure('GET', 'export/signing-key/signer')).toMatchObject({ code: 'transit.unsupported_operation' });
    expect(await failure('POST', 'export/signing-key/signer')).toMatchObject({ code: 'secrets.unsupported_operation' });
    expect(await failure('GET', 'export/private-key/signer')).toMatchObject({ code: 'transit.invalid_request' });
    const pub = await call('GET', 'export/public-key/signer/latest');
    expect(pub.data).toMatchObject({ name: 'signer', type: 'ecdsa-p256', keys: { 1: expect.stringContaining('BEGIN PUBLIC KEY') } });
    expect(pub.audit).toEqual({ key: 'signer', export: 'public-key', versions: ['1'] });
    await call('POST', 'keys/signer/config', { exportable: true });
    expect((await call('GET', 'export/signing-key/signer/1')).data!.keys).toEqual({ 1: expect.stringContaining('BEGIN EC PRIVATE KEY') });
  });

  it('configures, trims and deletes through the API', async () => {
    expect(await failure('DELETE', 'keys/planned')).toMatchObject({ code: 'transit.deletion_not_allowed' });
    await call('POST', 'keys/planned/rotate');
    await call('POST', 'keys/planned/rotate');
    const configured = await call('POST', 'keys/planned/config', { min_decryption_version: '2', deletion_allowed: true });
    expect(configured.data).toMatchObject({ min_decryption_version: 2, deletion_allowed: true, latest_version: 3 });
    const trimmed = await call('POST', 'keys/planned/trim', { min_available_version: 2 });
    expect(Object.keys(trimmed.data!.keys as object)).toEqual(['2', '3']);
    expect(await failure('POST', 'keys/planned/config', { min_decryption_version: 'two' })).toMatchObject({ code: 'secrets.invalid_request' });
    expect((await call('DELETE', 'keys/planned')).status).toBe(204);
    expect(await failure('GET', 'keys/planned')).toMatchObject({ code: 'transit.key_not_found' });
  });

  it('fails a whole batch closed when the barrier is sealed, instead of reporting per-item errors', async () => {
    const enc = await call('POST', 'encrypt/sealed-test', { plaintext: b64('x') });
    barrier.seal();
    expect(await failure('POST', 'decrypt/sealed-test', { batch_input: [{ ciphertext: enc.data!.ciphertext }, { ciphertext: enc.data!.ciphertext }] })).toMatchObject({
      code: 'secrets.sealed',
    });
    expect(await failure('POST', 'encrypt/sealed-test', { plaintext: b64('x') })).toMatchObject({ code: 'secrets.sealed' });
  });

  it('purges every key of the mount on unmount', async () => {
    const stores = bindStores(database().db, database().dialect);
    await transitEngine.purge!(stores, mount);
    expect(await stores.transitKeys.list('acme', mount.accessor, undefined, 10)).toEqual([]);
  });
});
