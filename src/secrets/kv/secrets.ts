import type { Clock } from '../../core/clock.js';
import { SecretsError } from '../../core/errors.js';
import type { Sealer } from '../../core/sealer.js';
import { formatSeconds } from '../fields.js';
import { childKeys } from '../list-keys.js';
import { mergePatch } from './merge-patch.js';
import type { KvConfigRecord, KvKey, KvMetadataRecord, KvStore, KvVersionRecord } from './store.js';
import { type KvRotation, pruneFloor, recordNewVersion } from '../rotation/kv-versions.js';

/**
 * KV version 2 semantics, as Vault documents them (api-docs/secret/kv/kv-v2): every write is a new
 * version; versions are soft-deleted (recoverable), undeleted, or destroyed (data gone for good);
 * `max_versions` keeps the newest N (default 10); check-and-set makes a write conditional on the
 * current version (`cas: 0` — only if the secret does not exist).
 *
 * Data is stored only as barrier ciphertext with the record id `kv/<mount>/<path>#<version>` as
 * associated data, so a ciphertext copied to another version, path or tenant fails to decrypt.
 */
export const DEFAULT_MAX_VERSIONS = 10;

export interface KvContext {
  readonly store: KvStore;
  readonly sealer: Sealer;
  readonly clock: Clock;
  /** Rotation policies, grace versions and change events (docs/secrets.md#rotation); absent in unit tests of KV alone. */
  readonly rotation?: KvRotation;
}

export interface VersionMetadata extends Readonly<Record<string, unknown>> {
  readonly created_time: string;
  readonly custom_metadata: Readonly<Record<string, string>> | null;
  readonly deletion_time: string;
  readonly destroyed: boolean;
  readonly version: number;
}

export type SecretData = Record<string, unknown>;

function recordId(key: KvKey, version: number): string {
  return `kv/${key.mount}/${key.path}#${version}`;
}

export function effectiveConfig(config: KvConfigRecord | undefined, meta: KvMetadataRecord | undefined) {
  return {
    maxVersions: meta?.maxVersions || config?.maxVersions || DEFAULT_MAX_VERSIONS,
    casRequired: (meta?.casRequired ?? false) || (config?.casRequired ?? false),
    deleteVersionAfter: meta?.deleteVersionAfter || config?.deleteVersionAfter || 0,
  };
}

/** True when the version is soft-deleted now (also when its delete_version_after passed). */
function isDeleted(v: KvVersionRecord, now: Date): boolean {
  return v.deletionTime !== null && v.deletionTime <= now.toISOString();
}

export function versionMetadata(v: KvVersionRecord, meta: KvMetadataRecord | undefined): VersionMetadata {
  return {
    created_time: v.createdAt,
    custom_metadata: meta && Object.keys(meta.customMetadata).length > 0 ? meta.customMetadata : null,
    deletion_time: v.deletionTime ?? '',
    destroyed: v.destroyed,
    version: v.version,
  };
}

/** Writes a new version; returns its metadata. `cas` undefined means unconditional. */
export async function writeSecret(ctx: KvContext, key: KvKey, data: SecretData, cas: number | undefined): Promise<VersionMetadata> {
  const now = ctx.clock.now();
  const at = now.toISOString();
  const meta = await ctx.store.lockMetadata(key, at);
  const config = effectiveConfig(await ctx.store.config(key.tenant, key.mount), meta);
  if (cas === undefined && config.casRequired) throw new SecretsError('secrets.cas_required', 'check-and-set parameter required for this call');
  if (cas !== undefined && cas !== meta.currentVersion) {
    throw new SecretsError('secrets.cas_mismatch', 'check-and-set parameter did not match the current version');
  }
  const version = meta.currentVersion + 1;
  const record: KvVersionRecord = {
    ...key,
    version,
    ciphertext: ctx.sealer.encrypt(key.tenant, recordId(key, version), Buffer.from(JSON.stringify(data), 'utf8')),
    createdAt: at,
    deletionTime: config.deleteVersionAfter > 0 ? new Date(now.getTime() + config.deleteVersionAfter * 1000).toISOString() : null,
    destroyed: false,
  };
  await ctx.store.insertVersion(record);
  if (ctx.rotation) await recordNewVersion(ctx.store, ctx.rotation, key, meta.currentVersion, version, now);
  const kept = Math.max(meta.oldestVersion || 1, version - config.maxVersions + 1);
  const oldest = ctx.rotation && kept > (meta.oldestVersion || 1) ? await pruneFloor(ctx.rotation, key, kept, now) : kept;
  if (oldest > (meta.oldestVersion || 1)) await ctx.store.pruneBefore(key, oldest);
  const updated: KvMetadataRecord = { ...meta, currentVersion: version, oldestVersion: oldest, updatedAt: at };
  await ctx.store.putMetadata(updated);
  return versionMetadata(record, updated);
}

export interface ReadResult {
  /** Null when the version is deleted or destroyed (Vault then answers 404 with the metadata). */
  readonly data: SecretData | null;
  readonly metadata: VersionMetadata;
}

/** Reads a version (0 or undefined: the current one); undefined when it does not exist. */
export async function readSecret(ctx: KvContext, key: KvKey, version: number | undefined): Promise<ReadResult | undefined> {
  const found = await ctx.store.readVersion(key, version || 0);
  if (!found || found.metadata.currentVersion === 0) return undefined;
  const { metadata: meta, version: v } = found;
  if (!v) return undefined;
  const metadata = versionMetadata(v, meta);
  if (v.destroyed || v.ciphertext === null || isDeleted(v, ctx.clock.now())) return { data: null, metadata };
  const plain = ctx.sealer.decrypt(key.tenant, recordId(key, v.version), v.ciphertext);
  return { data: JSON.parse(Buffer.from(plain).toString('utf8')) as SecretData, metadata };
}

/** PATCH: RFC 7396 merge of `patch` into the current version, written as a new version. */
export async function patchSecret(ctx: KvContext, key: KvKey, patch: SecretData, cas: number | undefined): Promise<VersionMetadata> {
  const current = await readSecret(ctx, key, undefined);
  if (!current || current.data === null) throw new SecretsError('secrets.not_found', 'no live current version to patch');
  const merged = mergePatch(current.data, patch) as SecretData;
  return writeSecret(ctx, key, merged, cas ?? current.metadata.version);
}

async function requireMetadata(ctx: KvContext, key: KvKey): Promise<KvMetadataRecord> {
  const meta = await ctx.store.lockMetadata(key, ctx.clock.now().toISOString());
  if (meta.currentVersion === 0) throw new SecretsError('secrets.not_found', 'no secret at this path');
  return meta;
}

/**
 * Prunes versions beyond `max_versions` that a grace period kept (docs/secrets.md#rotation); the
 * next write would otherwise be the first to drop them.
 */
export async function pruneExcessVersions(ctx: KvContext, key: KvKey): Promise<void> {
  const now = ctx.clock.now();
  const meta = await ctx.store.metadata(key);
  if (!meta || meta.currentVersion === 0) return;
  const locked = await ctx.store.lockMetadata(key, now.toISOString());
  const config = effectiveConfig(await ctx.store.config(key.tenant, key.mount), locked);
  const kept = Math.max(locked.oldestVersion || 1, locked.currentVersion - config.maxVersions + 1);
  const oldest = ctx.rotation ? await pruneFloor(ctx.rotation, key, kept, now) : kept;
  if (oldest <= (locked.oldestVersion || 1)) return;
  await ctx.store.pruneBefore(key, oldest);
  await ctx.store.putMetadata({ ...locked, oldestVersion: oldest });
}

/** Soft-deletes versions (`delete/`), or the current one (`DELETE data/`). Unknown versions are ignored, as in Vault. */
export async function deleteVersions(ctx: KvContext, key: KvKey, versions: readonly number[] | 'current'): Promise<void> {
  const meta = await requireMetadata(ctx, key);
  const at = ctx.clock.now().toISOString();
  for (const n of versions === 'current' ? [meta.currentVersion] : versions) {
    const v = await ctx.store.version(key, n);
    if (v && !v.destroyed && !isDeleted(v, ctx.clock.now())) await ctx.store.updateVersion(key, n, { deletionTime: at });
  }
}

export async function undeleteVersions(ctx: KvContext, key: KvKey, versions: readonly number[]): Promise<void> {
  await requireMetadata(ctx, key);
  for (const n of versions) {
    const v = await ctx.store.version(key, n);
    if (v && !v.destroyed) await ctx.store.updateVersion(key, n, { deletionTime: null });
  }
}

/** Destroys versions: the ciphertext is removed, the version stays listed as destroyed. */
export async function destroyVersions(ctx: KvContext, key: KvKey, versions: readonly number[]): Promise<void> {
  await requireMetadata(ctx, key);
  for (const n of versions) {
    if (await ctx.store.version(key, n)) await ctx.store.updateVersion(key, n, { destroy: true });
  }
}

/** Undefined when the secret has no metadata (metadata written before any data counts, as in Vault). */
export async function readMetadata(ctx: KvContext, key: KvKey): Promise<Record<string, unknown> | undefined> {
  const meta = await ctx.store.metadata(key);
  if (!meta) return undefined;
  const versions = await ctx.store.versions(key);
  return {
    cas_required: meta.casRequired,
    created_time: meta.createdAt,
    current_version: meta.currentVersion,
    custom_metadata: Object.keys(meta.customMetadata).length > 0 ? meta.customMetadata : null,
    delete_version_after: formatSeconds(meta.deleteVersionAfter),
    max_versions: meta.maxVersions,
    oldest_version: meta.oldestVersion,
    updated_time: meta.updatedAt,
    versions: Object.fromEntries(
      versions.map((v) => [String(v.version), { created_time: v.createdAt, deletion_time: v.deletionTime ?? '', destroyed: v.destroyed }]),
    ),
  };
}

export interface MetadataChange {
  readonly maxVersions?: number | undefined;
  readonly casRequired?: boolean | undefined;
  readonly deleteVersionAfter?: number | undefined;
  readonly customMetadata?: Readonly<Record<string, string>> | undefined;
}

/** `POST metadata/<path>` replaces the given settings; `PATCH` merges custom metadata. */
export async function writeMetadata(ctx: KvContext, key: KvKey, change: MetadataChange, mergeCustom: boolean): Promise<void> {
  const at = ctx.clock.now().toISOString();
  const meta = await ctx.store.lockMetadata(key, at);
  const custom = change.customMetadata === undefined ? meta.customMetadata : mergeCustom ? { ...meta.customMetadata, ...change.customMetadata } : change.customMetadata;
  await ctx.store.putMetadata({
    ...meta,
    maxVersions: change.maxVersions ?? meta.maxVersions,
    casRequired: change.casRequired ?? meta.casRequired,
    deleteVersionAfter: change.deleteVersionAfter ?? meta.deleteVersionAfter,
    customMetadata: custom,
    updatedAt: at,
  });
}

/** Deletes the secret: metadata and every version. Returns false when there was none. */
export async function deleteMetadata(ctx: KvContext, key: KvKey): Promise<boolean> {
  const meta = await ctx.store.metadata(key);
  if (!meta) return false;
  await ctx.store.deleteSecret(key);
  return true;
}

/**
 * Immediate children of `prefix` (a folder path ending in `/`, or '' for the root): secret names
 * and `sub/` folders, sorted. `after` and `limit` page through them (Rampart's extension: Vault
 * always answers the full list, which is what a request without them gets).
 */
export async function listKeys(ctx: KvContext, tenant: string, mount: string, prefix: string, after: string | undefined, limit: number | undefined): Promise<string[]> {
  return childKeys(await ctx.store.paths(tenant, mount, prefix), prefix, after, limit);
}

/** The key structure of a version with every leaf value replaced by null, to `depth` levels (0: all). */
export function subkeys(data: unknown, depth: number, level = 1): unknown {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  if (depth > 0 && level > depth) return null;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, subkeys(v, depth, level + 1)]));
}
