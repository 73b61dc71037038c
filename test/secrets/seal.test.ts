import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { SecretsSeal } from '../../src/secrets/seal.js';
import type { SealConfig, SecretsKeyringStore } from '../../src/secrets/store.js';

/** An in-memory keyring store: the seal's behaviour, not SQL, is under test here. */
class MemoryKeyringStore implements SecretsKeyringStore {
  blob: string | undefined;
  config: SealConfig | undefined;
  async load() {
    return this.blob;
  }
  async initialize(ciphertext: string) {
    if (this.blob !== undefined) return false;
    this.blob = ciphertext;
    this.config = { type: 'file', secretShares: 1, secretThreshold: 1 };
    return true;
  }
  async lockKeyring() {
    return this.blob;
  }
  async replace(ciphertext: string) {
    this.blob = ciphertext;
  }
  async sealConfig() {
    return this.config;
  }
  async setSealConfig(config: SealConfig) {
    this.config = config;
  }
}

const clock = new ManualClock();

async function initialized(shares: number, threshold: number) {
  const store = new MemoryKeyringStore();
  const fileKey = randomBytes(32);
  const seal = await SecretsSeal.open(store, clock, () => fileKey);
  const sealed = seal.barrier.encrypt('t', 'r', Buffer.from('payload'));
  const init = await seal.init(store, shares, threshold);
  return { store, fileKey, seal, sealed, init };
}

describe('SecretsSeal', () => {
  it('auto-unseals from the key file until sys/init', async () => {
    const store = new MemoryKeyringStore();
    const seal = await SecretsSeal.open(store, clock, () => randomBytes(32));
    expect(seal.status()).toMatchObject({ type: 'file', initialized: false, sealed: false });
  });

  it('unseals with any threshold of distinct shares, hex or base64', async () => {
    const { store, seal, sealed, init } = await initialized(5, 3);
    seal.seal();
    expect(() => seal.barrier.decrypt('t', 'r', sealed)).toThrow();
    expect((await seal.unseal(store, init.keys[4], false)).progress).toBe(1);
    expect((await seal.unseal(store, init.keys[4], false)).progress).toBe(1);
    expect((await seal.unseal(store, init.keysBase64[1], false)).progress).toBe(2);
    expect(await seal.unseal(store, init.keys[2], false)).toMatchObject({ sealed: false, progress: 0 });
    expect(seal.barrier.decrypt('t', 'r', sealed).toString()).toBe('payload');
  });

  it('comes up sealed after a restart: the key file no longer opens the keyring', async () => {
    const { store, fileKey, init } = await initialized(3, 2);
    const restarted = await SecretsSeal.open(store, clock, () => fileKey);
    expect(restarted.status()).toMatchObject({ type: 'shamir', initialized: true, sealed: true, t: 2, n: 3 });
    await restarted.unseal(store, init.keys[0], false);
    expect((await restarted.unseal(store, init.keys[1], false)).sealed).toBe(false);
  });

  it('refuses wrong shares once the threshold is reached and resets the progress', async () => {
    const { store, seal, init } = await initialized(3, 2);
    seal.seal();
    const flipped = (hex: string) => (hex.slice(0, 2) === '00' ? '01' : '00') + hex.slice(2);
    await seal.unseal(store, flipped(init.keys[0]!), false);
    await expect(seal.unseal(store, init.keys[1], false)).rejects.toMatchObject({ code: 'secrets.unseal_key_invalid' });
    expect(seal.status()).toMatchObject({ sealed: true, progress: 0 });
    await expect(seal.unseal(store, 'short', false)).rejects.toMatchObject({ code: 'secrets.unseal_key_invalid' });
    await seal.unseal(store, init.keys[1], false);
    expect((await seal.unseal(store, init.keys[2], false)).sealed).toBe(false);
  });

  it('resets progress on request and refuses a second init', async () => {
    const { store, seal, init } = await initialized(3, 2);
    seal.seal();
    await seal.unseal(store, init.keys[0], false);
    expect((await seal.unseal(store, undefined, true)).progress).toBe(0);
    await expect(seal.init(store, 3, 2)).rejects.toMatchObject({ code: 'secrets.already_initialized' });
  });

  it('rotates from the stored keyring, so replicas never drop each other\'s keys', async () => {
    const store = new MemoryKeyringStore();
    const fileKey = randomBytes(32);
    const a = await SecretsSeal.open(store, clock, () => fileKey);
    const b = await SecretsSeal.open(store, clock, () => fileKey);
    expect(await a.barrier.rotate(store, clock)).toBe(2);
    const fromA = a.barrier.encrypt('t', 'r', Buffer.from('a'));
    expect(await b.barrier.rotate(store, clock)).toBe(3);
    const fromB = b.barrier.encrypt('t', 'r', Buffer.from('b'));
    expect(b.barrier.decrypt('t', 'r', fromA).toString()).toBe('a');
    expect(() => a.barrier.decrypt('t', 'r', fromB)).toThrow();
    await a.barrier.reload(store);
    expect(a.barrier.decrypt('t', 'r', fromB).toString()).toBe('b');
    expect(a.barrier.keyStatus().term).toBe(3);
  });

  it('refuses to rotate a keyring another replica moved to Shamir shares', async () => {
    const store = new MemoryKeyringStore();
    const fileKey = randomBytes(32);
    const a = await SecretsSeal.open(store, clock, () => fileKey);
    const b = await SecretsSeal.open(store, clock, () => fileKey);
    await a.init(store, 3, 2);
    const before = store.blob;
    await expect(b.barrier.rotate(store, clock)).rejects.toMatchObject({ code: 'secrets.decrypt_failed' });
    expect(store.blob).toBe(before);
  });

  it('supports a single share', async () => {
    const { store, seal, init } = await initialized(1, 1);
    seal.seal();
    expect((await seal.unseal(store, init.keys[0], false)).sealed).toBe(false);
  });
});
