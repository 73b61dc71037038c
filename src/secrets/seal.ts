import { randomBytes, timingSafeEqual } from 'node:crypto';
import { combine, split } from 'shamir-secret-sharing';
import type { Clock } from '../core/clock.js';
import { SecretsError, isRampartError } from '../core/errors.js';
import { Barrier } from './barrier.js';
import type { SealConfig, SecretsKeyringStore } from './store.js';

/**
 * The seal of the secrets barrier (Vault api-docs/system/init, unseal, seal, seal-status).
 *
 * Until `sys/init`, the secrets keyring is auto-unsealed from the unseal key file, like the
 * infrastructure barrier, so the quick start stays one command. `sys/init` draws a fresh 256-bit
 * root key, re-encrypts the keyring under it and splits it with Shamir's scheme (the audited
 * `shamir-secret-sharing` package; shares are 33 bytes: the key share and its x coordinate).
 * From then on the key file no longer opens the keyring: a restarted server comes up sealed and
 * `threshold` distinct shares must be submitted to `sys/unseal`. A set of shares that does not
 * reconstruct a key opening the keyring is refused and the progress reset, as Vault does.
 */
export interface SealStatus {
  readonly type: 'shamir' | 'file';
  readonly initialized: boolean;
  readonly sealed: boolean;
  readonly t: number;
  readonly n: number;
  readonly progress: number;
  readonly nonce: string;
}

export interface InitResult {
  /** Hex shares, as Vault's `keys`. */
  readonly keys: string[];
  readonly keysBase64: string[];
}

const ROOT_KEY_BYTES = 32;
const REFRESH_MS = 5_000;
const SHARE_BYTES = ROOT_KEY_BYTES + 1;

export class SecretsSeal {
  readonly barrier = new Barrier();
  #config: SealConfig | undefined;
  #pending: Buffer[] = [];
  #nonce = '';
  #refreshedAt = Date.now();
  #refreshing: Promise<void> | undefined;

  private constructor(
    private readonly clock: Clock,
  ) {}

  /**
   * Opens the secrets barrier at start: auto-unsealed from the key file until `sys/init`,
   * sealed afterwards. Creates the keyring on first start.
   */
  static async open(store: SecretsKeyringStore, clock: Clock, fileKey: () => Buffer): Promise<SecretsSeal> {
    const seal = new SecretsSeal(clock);
    seal.#config = await store.sealConfig();
    if (seal.#config?.type !== 'shamir') {
      await seal.barrier.unseal(fileKey(), store, clock);
      seal.#config = await store.sealConfig();
    }
    return seal;
  }

  get sealed(): boolean {
    return this.barrier.sealed;
  }

  /**
   * Re-reads the keyring at most every {@link REFRESH_MS}, in the background, so that keys other
   * replicas added by `sys/rotate` open here too; until then such a record fails to decrypt
   * (`secrets.decrypt_failed`) on this replica. Failures go to `onError`.
   */
  refreshIfStale(store: SecretsKeyringStore, onError: (err: unknown) => void): void {
    if (this.barrier.sealed || this.#refreshing || Date.now() - this.#refreshedAt < REFRESH_MS) return;
    this.#refreshedAt = Date.now();
    this.#refreshing = this.barrier
      .reload(store)
      .catch(onError)
      .finally(() => {
        this.#refreshing = undefined;
      });
  }

  status(): SealStatus {
    const shamir = this.#config?.type === 'shamir';
    return {
      type: shamir ? 'shamir' : 'file',
      initialized: shamir,
      sealed: this.barrier.sealed,
      t: shamir ? this.#config!.secretThreshold : 0,
      n: shamir ? this.#config!.secretShares : 0,
      progress: this.#pending.length,
      nonce: this.#nonce,
    };
  }

  /** Moves the barrier from the key file to Shamir shares. Needs the barrier unsealed. */
  async init(store: SecretsKeyringStore, shares: number, threshold: number): Promise<InitResult> {
    if (this.#config?.type === 'shamir') throw new SecretsError('secrets.already_initialized', 'Vault is already initialized');
    if (!Number.isSafeInteger(shares) || !Number.isSafeInteger(threshold) || shares < 1 || shares > 255 || threshold < 1 || threshold > shares) {
      throw new SecretsError('secrets.invalid_request', 'secret_shares must be 1–255 and secret_threshold 1–secret_shares');
    }
    if ((threshold === 1) !== (shares === 1)) {
      throw new SecretsError('secrets.invalid_request', 'secret_threshold 1 is only possible with secret_shares 1');
    }
    const root = randomBytes(ROOT_KEY_BYTES);
    // The library checks for a plain Uint8Array, which a Buffer is not.
    const plain = Uint8Array.from(root);
    try {
      const parts = shares === 1 ? [Uint8Array.from(root)] : await split(plain, shares, threshold);
      await this.barrier.rewrap(root, store, this.clock);
      const config: SealConfig = { type: 'shamir', secretShares: shares, secretThreshold: threshold };
      await store.setSealConfig(config, this.clock.now().toISOString());
      this.#config = config;
      return { keys: parts.map((p) => Buffer.from(p).toString('hex')), keysBase64: parts.map((p) => Buffer.from(p).toString('base64')) };
    } finally {
      root.fill(0);
      plain.fill(0);
    }
  }

  seal(): void {
    this.barrier.seal();
    this.#reset();
  }

  /**
   * Accepts one share (hex or base64). Returns the status; unseals once `threshold` distinct
   * shares are in. A repeated share does not count twice.
   */
  async unseal(store: SecretsKeyringStore, key: string | undefined, reset: boolean): Promise<SealStatus> {
    if (reset) this.#reset();
    if (key === undefined) return this.status();
    if (this.#config?.type !== 'shamir') throw new SecretsError('secrets.invalid_request', 'the barrier is auto-unsealed from its key file; run sys/init first');
    if (!this.barrier.sealed) return this.status();
    const share = decodeShare(key, this.#config.secretShares === 1 ? ROOT_KEY_BYTES : SHARE_BYTES);
    if (!this.#pending.some((p) => p.length === share.length && timingSafeEqual(p, share))) this.#pending.push(share);
    if (this.#nonce === '') this.#nonce = randomBytes(16).toString('hex');
    if (this.#pending.length < this.#config.secretThreshold) return this.status();
    // Taken out of the pending list before combining; zeroed in `finally` below.
    const shares = this.#pending;
    this.#pending = [];
    this.#nonce = '';
    let root: Buffer | undefined;
    try {
      root = shares.length === 1 ? Buffer.from(shares[0]!) : Buffer.from(await combine(shares.map((s) => Uint8Array.from(s))));
      await this.barrier.unseal(root, store, this.clock);
    } catch (err) {
      if (isRampartError(err) && err.code !== 'secrets.decrypt_failed') throw err;
      throw new SecretsError('secrets.unseal_key_invalid', 'the unseal keys do not reconstruct the root key; progress was reset', { cause: err });
    } finally {
      root?.fill(0);
      for (const s of shares) s.fill(0);
    }
    return this.status();
  }

  #reset(): void {
    for (const p of this.#pending) p.fill(0);
    this.#pending = [];
    this.#nonce = '';
  }
}

function decodeShare(key: string, length: number): Buffer {
  const bytes = /^[0-9a-fA-F]+$/.test(key) && key.length === length * 2 ? Buffer.from(key, 'hex') : Buffer.from(key, 'base64');
  if (bytes.length !== length) throw new SecretsError('secrets.unseal_key_invalid', `an unseal key is ${length} bytes, hex or base64`);
  return bytes;
}
