import { SecretsError } from '../../core/errors.js';
import type { Capability, EngineFactory, EnginePlan, EngineRequest, EngineRequestHead, EngineResponse, Mount, SecretsEngine } from '../engine.js';
import { optionalBool, optionalDurationSeconds, optionalInt, optionalStringMap, versionList, formatSeconds } from '../fields.js';
import {
  type KvContext,
  type SecretData,
  deleteMetadata,
  deleteVersions,
  destroyVersions,
  listKeys,
  patchSecret,
  readMetadata,
  readSecret,
  subkeys,
  undeleteVersions,
  writeMetadata,
  writeSecret,
} from './secrets.js';
import type { KvKey } from './store.js';
import { unsupportedOperation } from '../engine.js';
import { applyRotationChange, parseRotationChange, rotationView } from '../rotation/policy.js';

/**
 * The KV v2 engine's paths (Vault api-docs/secret/kv/kv-v2): `config`, `data/<p>`,
 * `metadata/<p>`, `delete/<p>`, `undelete/<p>`, `destroy/<p>`, `subkeys/<p>`. Mounts with
 * `options.version` "1" never reach it: src/secrets/kv1/versioned-kv.ts sends them to KV v1.
 */
type Section = 'config' | 'data' | 'metadata' | 'delete' | 'undelete' | 'destroy' | 'subkeys';
const SECTIONS = new Set<string>(['config', 'data', 'metadata', 'delete', 'undelete', 'destroy', 'subkeys']);
const MERGE_PATCH = 'application/merge-patch+json';
const MAX_PATH = 1024;

function split(path: string): { section: Section; key: string } {
  const slash = path.indexOf('/');
  const section = slash === -1 ? path : path.slice(0, slash);
  if (!SECTIONS.has(section)) throw new SecretsError('secrets.not_found', `unsupported path "${path}"`);
  const key = slash === -1 ? '' : path.slice(slash + 1);
  if (key.length > MAX_PATH || key.split('/').some((s, i, all) => s === '..' || s === '.' || (s === '' && i < all.length - 1))) {
    throw new SecretsError('secrets.invalid_request', 'invalid secret path');
  }
  return { section: section as Section, key };
}

function plan(capability: Capability, writes: boolean): EnginePlan {
  return { capabilities: [capability], writes };
}

class KvEngine implements SecretsEngine {
  constructor(private readonly mount: Mount) {}

  async plan(req: EngineRequestHead): Promise<EnginePlan> {
    const { section, key } = split(req.path);
    const m = req.method;
    switch (section) {
      case 'config':
        return m === 'GET' ? plan('read', false) : m === 'POST' || m === 'PUT' ? plan('update', true) : unsupportedOperation();
      case 'data': {
        if (m === 'GET') return plan('read', false);
        if (m === 'DELETE') return plan('delete', true);
        if (m === 'PATCH') return plan('patch', true);
        if (m !== 'POST' && m !== 'PUT') return unsupportedOperation();
        // Vault's existence check: writing a secret that does not exist yet needs `create`.
        const meta = await req.stores.kv.metadata(this.#key(req.tenant, key));
        return plan(meta && meta.currentVersion > 0 ? 'update' : 'create', true);
      }
      case 'metadata':
        if (m === 'GET') return plan('read', false);
        if (m === 'LIST') return plan('list', false);
        if (m === 'DELETE') return plan('delete', true);
        if (m === 'PATCH') return plan('patch', true);
        return m === 'POST' || m === 'PUT' ? plan('update', true) : unsupportedOperation();
      case 'subkeys':
        return m === 'GET' ? plan('read', false) : unsupportedOperation();
      case 'delete':
      case 'undelete':
      case 'destroy':
        return m === 'POST' || m === 'PUT' ? plan('update', true) : unsupportedOperation();
    }
  }

  #key(tenant: string, path: string): KvKey {
    return { tenant, mount: this.mount.accessor, path };
  }

  async handle(req: EngineRequest): Promise<EngineResponse> {
    const { section, key: path } = split(req.path);
    const ctx: KvContext = { store: req.stores.kv, sealer: req.sealer, clock: req.clock, rotation: { store: req.stores.rotation, mountPath: this.mount.path } };
    const key = this.#key(req.tenant, path);
    const needKey = () => {
      if (path === '' || path.endsWith('/')) throw new SecretsError('secrets.invalid_request', 'missing secret path');
    };
    const b = req.body;
    switch (section) {
      case 'config':
        return req.method === 'GET' ? this.#readConfig(ctx, req.tenant) : this.#writeConfig(ctx, req);
      case 'data': {
        needKey();
        if (req.method === 'GET') {
          const version = optionalInt(req.query, 'version') ?? 0;
          const found = await readSecret(ctx, key, version);
          if (!found) throw new SecretsError('secrets.not_found', 'no secret at this path');
          // Deleted or destroyed: 404 with the version's metadata, as Vault answers.
          if (found.data === null) return { status: 404, data: { data: null, metadata: found.metadata }, audit: { version: found.metadata.version } };
          return { data: { data: found.data, metadata: found.metadata }, audit: { version: found.metadata.version } };
        }
        if (req.method === 'DELETE') {
          await deleteVersions(ctx, key, 'current');
          return { status: 204 };
        }
        const data = b.data;
        if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new SecretsError('secrets.invalid_request', 'data: expected an object');
        const options = (b.options ?? {}) as Record<string, unknown>;
        if (typeof options !== 'object' || Array.isArray(options)) throw new SecretsError('secrets.invalid_request', 'options: expected an object');
        const cas = optionalInt(options, 'cas');
        if (req.method === 'PATCH') {
          if (req.contentType !== MERGE_PATCH) {
            throw new SecretsError('secrets.invalid_request', `PATCH requires Content-Type ${MERGE_PATCH}`);
          }
          const meta = await patchSecret(ctx, key, data as SecretData, cas);
          return { data: meta, audit: { version: meta.version } };
        }
        const meta = await writeSecret(ctx, key, data as SecretData, cas);
        return { data: meta, audit: { version: meta.version } };
      }
      case 'metadata': {
        if (req.method === 'LIST') {
          if (path !== '' && !path.endsWith('/')) throw new SecretsError('secrets.invalid_request', 'a LIST path names a folder and ends with "/"');
          const after = typeof req.query.after === 'string' ? req.query.after : undefined;
          const limit = optionalInt(req.query, 'limit', 1, 10_000);
          const keys = await listKeys(ctx, req.tenant, this.mount.accessor, path, after, limit);
          if (keys.length === 0) throw new SecretsError('secrets.not_found', 'no keys under this path');
          return { data: { keys }, audit: { count: keys.length } };
        }
        needKey();
        if (req.method === 'GET') {
          const meta = await readMetadata(ctx, key);
          if (!meta) throw new SecretsError('secrets.not_found', 'no secret at this path');
          return { data: { ...meta, ...rotationView(await req.stores.rotation.policy(key)) } };
        }
        if (req.method === 'DELETE') {
          await deleteMetadata(ctx, key);
          await req.stores.rotation.deleteSecret(key);
          return { status: 204 };
        }
        // Rampart's rotation fields (docs/secrets.md#rotation) are checked in full before anything is written.
        const rotationChange = parseRotationChange(b);
        const existingPolicy = rotationChange ? await req.stores.rotation.policy(key) : undefined;
        const policy = rotationChange && applyRotationChange(key, this.mount.path, existingPolicy, rotationChange, req.clock.now());
        await writeMetadata(
          ctx,
          key,
          {
            maxVersions: optionalInt(b, 'max_versions', 0, 10_000),
            casRequired: optionalBool(b, 'cas_required'),
            deleteVersionAfter: optionalDurationSeconds(b, 'delete_version_after'),
            customMetadata: optionalStringMap(b, 'custom_metadata'),
          },
          req.method === 'PATCH',
        );
        if (rotationChange) {
          if (policy) await req.stores.rotation.putPolicy(policy);
          else await req.stores.rotation.deletePolicy(key);
          return { status: 204, audit: { rotation_period: policy?.periodSeconds ?? 0, rotation_generator: policy ? policy.generator !== null : false } };
        }
        return { status: 204 };
      }
      case 'subkeys': {
        needKey();
        const found = await readSecret(ctx, key, optionalInt(req.query, 'version') ?? 0);
        if (!found) throw new SecretsError('secrets.not_found', 'no secret at this path');
        if (found.data === null) return { status: 404, data: { subkeys: null, metadata: found.metadata } };
        return { data: { subkeys: subkeys(found.data, optionalInt(req.query, 'depth') ?? 0), metadata: found.metadata } };
      }
      case 'delete':
        needKey();
        await deleteVersions(ctx, key, versionList(b));
        return { status: 204 };
      case 'undelete':
        needKey();
        await undeleteVersions(ctx, key, versionList(b));
        return { status: 204 };
      case 'destroy':
        needKey();
        await destroyVersions(ctx, key, versionList(b));
        return { status: 204, audit: { destroyed: versionList(b).map(String) } };
    }
  }

  async #readConfig(ctx: KvContext, tenant: string): Promise<EngineResponse> {
    const c = await ctx.store.config(tenant, this.mount.accessor);
    return {
      data: { cas_required: c?.casRequired ?? false, delete_version_after: formatSeconds(c?.deleteVersionAfter ?? 0), max_versions: c?.maxVersions ?? 0 },
    };
  }

  async #writeConfig(ctx: KvContext, req: EngineRequest): Promise<EngineResponse> {
    const c = await ctx.store.config(req.tenant, this.mount.accessor);
    await ctx.store.putConfig({
      tenant: req.tenant,
      mount: this.mount.accessor,
      maxVersions: optionalInt(req.body, 'max_versions', 0, 10_000) ?? c?.maxVersions ?? 0,
      casRequired: optionalBool(req.body, 'cas_required') ?? c?.casRequired ?? false,
      deleteVersionAfter: optionalDurationSeconds(req.body, 'delete_version_after') ?? c?.deleteVersionAfter ?? 0,
    });
    return { status: 204 };
  }
}

export const kvEngine: EngineFactory = {
  type: 'kv',
  normalizeOptions(options) {
    const version = options.version ?? '2';
    if (version !== '2') throw new SecretsError('secrets.invalid_request', 'only KV version 2 is offered: options.version must be "2"');
    return { ...options, version: '2' };
  },
  create: (mount) => new KvEngine(mount),
  async purge(stores, mount) {
    await stores.kv.purgeMount(mount.tenant, mount.accessor);
    await stores.rotation.purgeMount(mount.tenant, mount.accessor);
  },
};
