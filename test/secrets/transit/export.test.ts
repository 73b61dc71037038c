import { createDecipheriv, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encrypt } from '../../../src/secrets/transit/encryption.js';
import { exportKey } from '../../../src/secrets/transit/export.js';
import type { OpenKey } from '../../../src/secrets/transit/open-key.js';
import { verifySignature } from '../../../src/secrets/transit/signing.js';
import { codeOf, transitFixture } from './transit-fixture.js';

describe('transit key export', () => {
  const t = transitFixture();
  const exported = async (key: OpenKey, kind: Parameters<typeof exportKey>[2], version?: string) =>
    exportKey(await t.reopen(key), (await t.keys().read(key.ref)).versions, kind, version);

  it('refuses private material of a key that is not exportable; its public key is always available', async () => {
    const key = await t.fresh({ type: 'ecdsa-p256' });
    for (const kind of ['signing-key', 'hmac-key'] as const) expect(await codeOf(() => exported(key, kind))).toBe('transit.unsupported_operation');
    expect((await exported(key, 'public-key'))['1']).toContain('BEGIN PUBLIC KEY');
    const aes = await t.fresh({ type: 'aes256-gcm96' });
    expect(await codeOf(() => exported(aes, 'encryption-key'))).toBe('transit.unsupported_operation');
    expect(await codeOf(() => exported(aes, 'public-key'))).toBe('transit.unsupported_operation');
  });

  it('exports an exportable AES key that opens its ciphertexts outside Rampart', async () => {
    const key = await t.fresh({ type: 'aes256-gcm96', exportable: true });
    const { ciphertext } = await encrypt(key, { plaintext: Buffer.from('portable') });
    const raw = Buffer.from(ciphertext.slice('vault:v1:'.length), 'base64');
    const secret = Buffer.from((await exported(key, 'encryption-key'))['1']!, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', secret, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    expect(Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString()).toBe('portable');
    expect(await codeOf(() => exported(key, 'signing-key'))).toBe('transit.unsupported_operation');
    expect(Buffer.from((await exported(key, 'hmac-key'))['1']!, 'base64')).toHaveLength(32);
  });

  it('exports signing keys in Vault\'s formats, each signing what transit verifies', async () => {
    const message = Buffer.from('signed outside');
    const ed = await t.fresh({ type: 'ed25519', exportable: true });
    const edRaw = Buffer.from((await exported(ed, 'signing-key'))['1']!, 'base64');
    expect(edRaw).toHaveLength(64);
    const edKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: edRaw.subarray(0, 32).toString('base64url'), x: edRaw.subarray(32).toString('base64url') }, format: 'jwk' });
    expect(await verifySignature(ed, { input: message, signature: `vault:v1:${sign(null, message, edKey).toString('base64')}` })).toBe(true);

    const ec = await t.fresh({ type: 'ecdsa-p256', exportable: true });
    const ecPem = (await exported(ec, 'signing-key'))['1']!;
    expect(ecPem).toContain('BEGIN EC PRIVATE KEY');
    expect(await verifySignature(ec, { input: message, signature: `vault:v1:${sign('sha256', message, ecPem).toString('base64')}` })).toBe(true);

    const rsa = await t.fresh({ type: 'rsa-2048', exportable: true });
    const rsaPem = (await exported(rsa, 'signing-key'))['1']!;
    expect(rsaPem).toContain('BEGIN RSA PRIVATE KEY');
    expect(createPublicKey(rsaPem).export({ format: 'pem', type: 'spki' })).toBe((await exported(rsa, 'public-key'))['1']);
  });

  it('exports every usable version, one version, or the latest; never versions below min_decryption_version', async () => {
    const key = await t.fresh({ type: 'chacha20-poly1305' });
    await t.keys().rotate(key.ref);
    await t.keys().rotate(key.ref);
    // exportable can be switched on later, never off.
    await t.keys().configure(key.ref, { exportable: true, minDecryptionVersion: 2 });
    expect(Object.keys(await exported(key, 'encryption-key'))).toEqual(['2', '3']);
    expect(Object.keys(await exported(key, 'encryption-key', 'latest'))).toEqual(['3']);
    expect(Object.keys(await exported(key, 'hmac-key', '2'))).toEqual(['2']);
    expect(await codeOf(() => exported(key, 'encryption-key', '1'))).toBe('transit.version_disallowed');
    expect(await codeOf(() => exported(key, 'encryption-key', '4'))).toBe('transit.invalid_request');
    expect(await codeOf(() => exported(key, 'encryption-key', 'v2'))).toBe('transit.invalid_request');
  });
});
