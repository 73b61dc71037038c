/**
 * Signs checkpoints of the audit log (./checkpoint.ts) after integration.
 *
 * Policy: while entries arrive, one checkpoint per `minIntervalMs` (1 s): at most one, because
 * each costs a signature and a row, and at least one, because a client can only verify what a
 * checkpoint covers. `notify()` (called after each integrated batch) schedules the next signing
 * at max(now, last + interval); nothing is signed while the tree does not grow.
 *
 * Invariant: the log never signs two inconsistent checkpoints. Before signing size n it proves
 * that the tree of n extends the latest signed tree of m: it restores the compact range stored
 * with checkpoint m (checking that it reproduces m's signed root), appends the leaf hashes it
 * recomputes from the stored payloads [m, n), and signs only if that yields the stored root of n.
 * This costs O(n − m), not O(n). Anything else is `audit.log_inconsistent`: nothing is signed and
 * the error carries both tree heads.
 */

import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { AuditError } from '../core/errors.js';
import { signCheckpoint } from './checkpoint.js';
import { CompactRange, leafHashOfText, toHex } from './merkle.js';
import { type NoteSigner, generateNoteKey, signerFromPkcs8 } from './note.js';
import type { AuditStore, CheckpointStore, StoredCheckpoint } from './store.js';
import type { Sealer } from '../core/sealer.js';

export interface CheckpointerOptions {
  readonly checkpoints: CheckpointStore;
  readonly audit: AuditStore;
  readonly sealer: Sealer;
  readonly clock: Clock;
  /**
   * The configured origin. Names a new log (default `rampart.local/audit/<16 random hex>`); for an
   * existing log it must equal the stored origin, else `open` throws `audit.origin_mismatch`.
   */
  readonly origin?: string | undefined;
  readonly minIntervalMs?: number;
  readonly onError?: (err: unknown) => void;
  /**
   * Re-reads and re-hashes the new leaves: {@link extendFromStore} over `audit` by default, or
   * the same check on the store's own thread (src/store/sqlite-audit-thread.ts).
   */
  readonly extend?: RangeExtender;
}

/** A leaf of the range being checked that is missing or does not match its payload. */
export interface BadLeaf {
  readonly index: number;
  readonly why: string;
}

/** Extends `range` to `size` from the stored leaves, or names the first that does not hold up. */
export type RangeExtender = (range: CompactRange, size: number) => Promise<{ readonly range: CompactRange } | { readonly bad: BadLeaf }>;

const KEY_TENANT = 'default';
const KEY_RECORD = 'audit-log-key';
/**
 * Leaves re-read and re-hashed per slice. Signing runs on the server's event loop, and on SQLite
 * every read is synchronous: the check of a second's worth of entries (thousands) is done in
 * slices of this size with a turn of the event loop between them, so requests are not held up
 * behind it (a slice costs well under a millisecond).
 */
const READ_CHUNK = 256;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Milliseconds until the next checkpoint may be signed: 0 now, else what remains of the interval. */
export function nextCheckpointDelay(lastSignedAtMs: number | undefined, nowMs: number, minIntervalMs: number): number {
  if (lastSignedAtMs === undefined) return 0;
  return Math.max(0, lastSignedAtMs + minIntervalMs - nowMs);
}

/**
 * Appends to `range` the leaves the store holds at [range.size, size), each recomputed from its
 * payload and compared with its stored hash and index (RFC 6962 §2.1). Reads in slices of
 * {@link READ_CHUNK}, with `between()` before each (a turn of the event loop, where the loop
 * runs it). Returns the first leaf that is missing or does not match, having appended the ones
 * before it; undefined when `range` now has `size` leaves.
 */
export async function extendFromStore(
  audit: Pick<AuditStore, 'leafEntries'>,
  range: CompactRange,
  size: number,
  between: () => Promise<void> = async () => undefined,
): Promise<BadLeaf | undefined> {
  for (let at = range.size; at < size; at += READ_CHUNK) {
    await between();
    const end = Math.min(size, at + READ_CHUNK);
    const rows = await audit.leafEntries(at, end);
    for (const row of rows) {
      const h = leafHashOfText(row.payload);
      if (row.leafIndex !== range.size || toHex(h) !== row.leafHash) {
        return { index: Math.min(row.leafIndex, range.size), why: 'is missing or does not match its payload' };
      }
      range.append(h);
    }
    if (range.size !== end) return { index: range.size, why: 'is missing' };
  }
  return undefined;
}

/** {@link extendFromStore} on the event loop, with a turn of it before each slice. */
export function storeExtender(audit: Pick<AuditStore, 'leafEntries'>): RangeExtender {
  return async (range, size) => {
    const bad = await extendFromStore(audit, range, size, yieldToEventLoop);
    return bad ? { bad } : { range };
  };
}

export class Checkpointer {
  readonly #checkpoints: CheckpointStore;
  readonly #audit: AuditStore;
  readonly #clock: Clock;
  readonly #signer: NoteSigner;
  readonly #minIntervalMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #extend: RangeExtender;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #lastSignedAtMs: number | undefined;
  #closed = false;

  private constructor(options: CheckpointerOptions, signer: NoteSigner) {
    this.#checkpoints = options.checkpoints;
    this.#audit = options.audit;
    this.#clock = options.clock;
    this.#signer = signer;
    this.#minIntervalMs = options.minIntervalMs ?? 1000;
    this.#onError = options.onError ?? (() => undefined);
    this.#extend = options.extend ?? storeExtender(options.audit);
  }

  /**
   * Loads the log key, or creates it on the very first start (sealed under `sealer`; when two
   * replicas race, the first stored key wins and both use it).
   *
   * The origin is the log's name in every checkpoint it ever signed, so it cannot change: a
   * configured origin other than the stored one throws `audit.origin_mismatch` rather than
   * start a second log (a fork) over the same entries.
   */
  static async open(options: CheckpointerOptions): Promise<Checkpointer> {
    let key = await options.checkpoints.loadKey();
    if (!key) {
      const origin = options.origin ?? `rampart.local/audit/${randomBytes(8).toString('hex')}`;
      const fresh = generateNoteKey(origin);
      key = await options.checkpoints.createKey({
        origin,
        verifierKey: fresh.signer.verifierKey,
        sealedPrivateKey: options.sealer.encrypt(KEY_TENANT, `${KEY_RECORD}/${origin}`, fresh.pkcs8),
        createdAt: options.clock.now().toISOString(),
      });
      fresh.pkcs8.fill(0);
    }
    // Checked after creation too: a replica that lost the race to create the key may differ.
    if (options.origin !== undefined && options.origin !== key.origin) {
      throw new AuditError('audit.origin_mismatch', `the audit log was created with origin "${key.origin}"; the configured audit_origin "${options.origin}" would fork it`, {
        details: { stored: key.origin, configured: options.origin },
      });
    }
    const pkcs8 = options.sealer.decrypt(KEY_TENANT, `${KEY_RECORD}/${key.origin}`, key.sealedPrivateKey);
    const signer = signerFromPkcs8(key.origin, pkcs8);
    pkcs8.fill(0);
    if (signer.verifierKey !== key.verifierKey) {
      throw new AuditError('audit.log_inconsistent', 'the stored audit log key does not match its verifier key', {
        details: { stored: key.verifierKey, derived: signer.verifierKey },
      });
    }
    return new Checkpointer(options, signer);
  }

  get origin(): string {
    return this.#signer.name;
  }

  /** `<origin>+<key id>+<base64(0x01 ‖ pubkey)>`, as served at /v1/audit/key. */
  get verifierKey(): string {
    return this.#signer.verifierKey;
  }

  /**
   * Signs a checkpoint for the current tree head if the tree grew since the latest checkpoint;
   * returns it, or undefined when there was nothing new. Calls are serialized.
   * Throws `audit.log_inconsistent` (and signs nothing) when the tree does not extend the latest
   * checkpoint.
   */
  checkpoint(): Promise<StoredCheckpoint | undefined> {
    const run = this.#queue.then(() => this.#checkpoints.withSignerLock(() => this.#signNext()));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #signNext(): Promise<StoredCheckpoint | undefined> {
    const state = await this.#audit.treeState();
    const latest = await this.#checkpoints.latest();
    const size = state?.size ?? 0;
    if (latest && size <= latest.size) {
      if (size < latest.size || state?.rootHash !== latest.rootHash) {
        throw this.#inconsistent(latest, size, state?.rootHash ?? '', 'the tree is smaller than, or differs from, the latest checkpoint', undefined);
      }
      return undefined;
    }
    if (!state) return undefined;
    const range = latest ? CompactRange.fromJSON(JSON.parse(latest.frontier)) : CompactRange.empty();
    if (latest && (range.size !== latest.size || toHex(range.root()) !== latest.rootHash)) {
      throw this.#inconsistent(latest, size, state.rootHash, 'the stored frontier does not reproduce the latest checkpoint', latest.size);
    }
    const extended = await this.#extend(range, size);
    if ('bad' in extended) {
      const { index, why } = extended.bad;
      throw this.#inconsistent(latest, size, state.rootHash, `leaf ${index} ${why}`, index);
    }
    const root = extended.range.root();
    if (toHex(root) !== state.rootHash) {
      throw this.#inconsistent(latest, size, state.rootHash, 'the stored tree head does not extend the latest checkpoint', latest?.size);
    }
    const cp: StoredCheckpoint = {
      size,
      rootHash: state.rootHash,
      note: signCheckpoint({ size, rootHash: root }, this.#signer),
      frontier: JSON.stringify(extended.range.toJSON()),
      createdAt: this.#clock.now().toISOString(),
    };
    await this.#checkpoints.insert(cp);
    this.#lastSignedAtMs = this.#clock.now().getTime();
    return cp;
  }

  #inconsistent(latest: StoredCheckpoint | undefined, size: number, root: string, why: string, firstBadIndex: number | undefined): AuditError {
    return new AuditError('audit.log_inconsistent', `refusing to sign a checkpoint: ${why}`, {
      details: {
        previous: latest ? { size: latest.size, root_hash: latest.rootHash, note: latest.note } : null,
        current: { size, root_hash: root },
        first_bad_index: firstBadIndex ?? null,
      },
    });
  }

  /** Called after entries were integrated: schedules a checkpoint within the interval. */
  notify(): void {
    if (this.#closed || this.#timer) return;
    const delay = nextCheckpointDelay(this.#lastSignedAtMs, this.#clock.now().getTime(), this.#minIntervalMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.checkpoint().catch(this.#onError);
    }, delay);
    this.#timer.unref();
  }

  /** Cancels the pending signing and waits for one in progress; `final` signs what is left. */
  async close(options: { final?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#queue;
    if (options.final) await this.checkpoint().catch(this.#onError);
  }
}
