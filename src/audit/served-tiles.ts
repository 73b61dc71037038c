/**
 * The bodies the tlog routes serve (c2sp.org/tlog-tiles): hash tiles and entry bundles, each with
 * a strong validator, the full ones kept in memory.
 *
 * tlog-tiles makes a full tile immutable: its 256 hashes are fixed once its last leaf is
 * integrated, which is why clients may cache it forever. This process does the same, up to a byte
 * budget, least recently used first out. Partial tiles change as the log grows and are read from
 * the store on every request.
 *
 * A full entry bundle is immutable in content but not in existence: retention (./pruner.ts) later
 * blanks payloads in it, after which it must be answered 410 and its content never served again.
 * A cached bundle is therefore served only after a read of the pruned markers in its range (no
 * payload is read), on every request and every replica: the pruner of another replica cannot
 * reach this process's cache.
 *
 * What the cache means for tamper detection: a cached body is what the store held when the tile
 * was first served. A row altered in the store after that is not in what this process serves until
 * the tile leaves the cache (eviction or restart), so online verification (`rampart audit verify`)
 * checks the log as served, and a cold cache serves the store as it is now. Offline verification
 * (`--data-dir`) always reads the store itself. docs/audit.md, "Tiles", states this for users.
 */

import { hash } from 'node:crypto';
import { AuditError } from '../core/errors.js';
import { HASH_SIZE } from './merkle.js';
import type { AuditStore } from './store.js';
import { MAX_ENTRY_BYTES, TILE_HEIGHT, TILE_WIDTH } from './tiles.js';

export interface ServedTile {
  readonly body: Buffer;
  /** base64url SHA-256 of `body`: equal digests mean byte-identical bodies (a strong validator, RFC 9110 §8.8.3). */
  readonly digest: string;
}

/** What serving tiles reads from the store. */
export type TileStore = Pick<AuditStore, 'tileHashesHex' | 'entryBundle' | 'prunedLeaves'>;

/** 8 KiB per full hash tile: 4,096 tiles, the level-0 tiles of ~1M leaves. */
export const HASH_TILE_CACHE_BYTES = 32 * 1024 * 1024;
/** About 150 KiB per full bundle of typical events: ~430 bundles, ~110k entries. */
export const BUNDLE_CACHE_BYTES = 64 * 1024 * 1024;

export interface ServedTilesOptions {
  readonly hashTileCacheBytes?: number;
  readonly bundleCacheBytes?: number;
}

/** A map bounded by the total size of its bodies; reading an entry makes it the newest. */
class BodyCache<K> {
  readonly #max: number;
  readonly #map = new Map<K, ServedTile>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(key: K): ServedTile | undefined {
    const hit = this.#map.get(key);
    if (hit) {
      this.#map.delete(key);
      this.#map.set(key, hit);
    }
    return hit;
  }

  set(key: K, tile: ServedTile): void {
    if (tile.body.length > this.#max) return;
    this.delete(key);
    this.#map.set(key, tile);
    this.#bytes += tile.body.length;
    for (const [oldest, t] of this.#map) {
      if (this.#bytes <= this.#max) break;
      this.#map.delete(oldest);
      this.#bytes -= t.body.length;
    }
  }

  delete(key: K): void {
    const had = this.#map.get(key);
    if (!had) return;
    this.#map.delete(key);
    this.#bytes -= had.body.length;
  }
}

const served = (body: Buffer): ServedTile => ({ body, digest: hash('sha256', body, 'base64url') });

function prunedError(index: number, width: number, firstPruned: number | null, pruned: number): AuditError {
  return new AuditError('audit.entry_pruned', `retention pruned ${pruned} entries of bundle ${index}; its level-0 hash tile is still served`, {
    details: { index, width, first_pruned: firstPruned, pruned },
  });
}

/**
 * Reads and caches served tiles. The caller bounds every request by a signed tree size: below it
 * a missing hash or entry means the store lost part of the log, `audit.log_inconsistent`.
 */
export class ServedTiles {
  readonly #store: TileStore;
  readonly #hashTiles: BodyCache<string>;
  readonly #bundles: BodyCache<number>;

  constructor(store: TileStore, options: ServedTilesOptions = {}) {
    this.#store = store;
    this.#hashTiles = new BodyCache(options.hashTileCacheBytes ?? HASH_TILE_CACHE_BYTES);
    this.#bundles = new BodyCache(options.bundleCacheBytes ?? BUNDLE_CACHE_BYTES);
  }

  /** Bytes held by each cache, for metrics and tests. */
  get cachedBytes(): { readonly hashTiles: number; readonly bundles: number } {
    return { hashTiles: this.#hashTiles.bytes, bundles: this.#bundles.bytes };
  }

  /** The first `width` hashes of tile `index` at `level`, decoded from the stored hex in one step. */
  async hashTile(level: number, index: number, width: number): Promise<ServedTile> {
    const full = width === TILE_WIDTH;
    const key = `${level}/${index}`;
    const hit = full ? this.#hashTiles.get(key) : undefined;
    if (hit) return hit;
    const start = index * TILE_WIDTH;
    const hex = await this.#store.tileHashesHex(level * TILE_HEIGHT, start, start + width);
    if (hex.length !== width * 2 * HASH_SIZE) {
      throw new AuditError('audit.log_inconsistent', `the store is missing hashes of tile ${level}/${index}`, {
        details: { level, index, width, returned: Math.floor(hex.length / (2 * HASH_SIZE)) },
      });
    }
    const tile = served(Buffer.from(hex, 'hex'));
    if (full) this.#hashTiles.set(key, tile);
    return tile;
  }

  /**
   * Entry bundle `index` of `width` entries. Throws `audit.entry_pruned` when retention pruned any
   * of them: a bundle is all of its entries or nothing, since an empty entry would read as a real
   * one; the level-0 hash tile of the same range stays served.
   */
  async entryBundle(index: number, width: number): Promise<ServedTile> {
    const full = width === TILE_WIDTH;
    const start = index * TILE_WIDTH;
    const hit = full ? this.#bundles.get(index) : undefined;
    if (hit) {
      const pruned = await this.#store.prunedLeaves(start, start + width);
      if (pruned.length === 0) return hit;
      this.#bundles.delete(index);
      throw prunedError(index, width, pruned[0] ?? null, pruned.length);
    }
    const stored = await this.#store.entryBundle(start, start + width);
    if (stored.count !== width || stored.first !== start || stored.last !== start + width - 1) {
      throw new AuditError('audit.log_inconsistent', `entries of bundle ${index} are missing from the store`, { details: { index, width, found: stored.count } });
    }
    if (stored.pruned > 0) throw prunedError(index, width, stored.firstPruned, stored.pruned);
    if (stored.longest > MAX_ENTRY_BYTES) {
      throw new AuditError('audit.log_inconsistent', `an entry of bundle ${index} is longer than an entry bundle can hold`, { details: { index, width, longest: stored.longest } });
    }
    const { body } = stored;
    // A view into a larger (pooled) buffer is copied, so that a cached bundle holds only its bytes.
    const tile = served(body.byteLength === body.buffer.byteLength ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : Buffer.from(body));
    if (full) this.#bundles.set(index, tile);
    return tile;
  }
}
