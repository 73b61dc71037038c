import { parseDuration } from '../../core/duration.js';
import { SecretsError } from '../../core/errors.js';
import { type EnginePlan, type EngineRequest, type EngineRequestHead, type EngineResponse, type Mount, type SecretsEngine, unsupportedOperation } from '../engine.js';
import { optionalInt } from '../fields.js';
import { readChildKeys } from '../list-keys.js';

/**
 * The KV version 1 engine (Vault api-docs/secret/kv/kv-v1): one value per path, no versions, no
 * metadata. `GET <mount>/<path>` reads, `POST`/`PUT` replaces (204), `DELETE` removes (204, also
 * for a path with nothing), `LIST` names the keys and `sub/` folders under a folder. Values are
 * stored only as barrier ciphertext bound to the tenant and `kv1/<mount accessor>/<path>`, so a
 * ciphertext moved to another path, mount or tenant does not decrypt.
 *
 * As in Vault, a read's `lease_duration` is the secret's own `ttl` field when it has one (a
 * duration or seconds, checked when written), else the mount's default lease TTL, else 768h; no
 * lease is created (`lease_id` stays empty). Writing a path that holds nothing needs `create`,
 * replacing one needs `update` (Vault's existence check).
 */
const MAX_PATH = 1024;
/** Vault's system default lease TTL, 32 days: what a read answers when nothing sets one. */
const DEFAULT_LEASE_SECONDS = 768 * 3600;

function recordId(mount: Mount, path: string): string {
  return `kv1/${mount.accessor}/${path}`;
}

/** The key below the mount; LIST may name a folder (`a/b/` or ''), the other methods a key. */
function checkPath(path: string): string {
  if (path.length > MAX_PATH || path.startsWith('/') || path.split('/').some((s, i, all) => s === '..' || s === '.' || (s === '' && i < all.length - 1))) {
    throw new SecretsError('secrets.invalid_request', 'invalid secret path');
  }
  return path;
}

/** The `ttl` (or legacy `lease`) a secret carries, in seconds; undefined when it has none. */
function secretTtl(data: Readonly<Record<string, unknown>>): number | undefined {
  const raw = data.ttl ?? data.lease;
  if (raw === undefined || raw === null || raw === '') return undefined;
  const ms = typeof raw === 'string' || typeof raw === 'number' ? parseDuration(raw) : undefined;
  if (ms === undefined) throw new SecretsError('secrets.invalid_request', 'failed to parse ttl: a duration such as "1h" or a number of seconds');
  return Math.floor(ms / 1000);
}

export class Kv1Engine implements SecretsEngine {
  constructor(private readonly mount: Mount) {}

  async plan(req: EngineRequestHead): Promise<EnginePlan> {
    const path = checkPath(req.path);
    switch (req.method) {
      case 'GET':
        return { capabilities: ['read'], writes: false };
      case 'LIST':
        return { capabilities: ['list'], writes: false };
      case 'DELETE':
        return { capabilities: ['delete'], writes: true };
      case 'POST':
      case 'PUT': {
        const existing = path === '' ? undefined : await req.stores.kv1.get(req.tenant, this.mount.accessor, path);
        return { capabilities: [existing ? 'update' : 'create'], writes: true };
      }
      default:
        return unsupportedOperation();
    }
  }

  async handle(req: EngineRequest): Promise<EngineResponse> {
    const path = checkPath(req.path);
    const store = req.stores.kv1;
    if (req.method === 'LIST') {
      // Vault lists the folder a path names whether or not it ends in "/".
      const prefix = path === '' || path.endsWith('/') ? path : `${path}/`;
      const after = typeof req.query.after === 'string' ? req.query.after : undefined;
      const limit = optionalInt(req.query, 'limit', 1, 10_000);
      const keys = await readChildKeys((start, n) => store.paths(req.tenant, this.mount.accessor, prefix, { ...start, limit: n }), prefix, after, limit);
      if (keys.length === 0) throw new SecretsError('secrets.not_found', 'no keys under this path');
      return { data: { keys }, audit: { count: keys.length } };
    }
    if (path === '' || path.endsWith('/')) throw new SecretsError('secrets.invalid_request', 'missing secret path');
    switch (req.method) {
      case 'GET': {
        const entry = await store.get(req.tenant, this.mount.accessor, path);
        if (!entry) throw new SecretsError('secrets.not_found', 'no secret at this path');
        const data = JSON.parse(Buffer.from(req.sealer.decrypt(req.tenant, recordId(this.mount, path), entry.ciphertext)).toString('utf8')) as Record<string, unknown>;
        return { data, leaseDuration: secretTtl(data) ?? (this.mount.defaultLeaseTtl || DEFAULT_LEASE_SECONDS), renewable: false };
      }
      case 'DELETE':
        await store.delete(req.tenant, this.mount.accessor, path);
        return { status: 204 };
      default: {
        if (Object.keys(req.body).length === 0) throw new SecretsError('secrets.invalid_request', 'missing data fields');
        secretTtl(req.body);
        const at = req.clock.now().toISOString();
        const ciphertext = req.sealer.encrypt(req.tenant, recordId(this.mount, path), Buffer.from(JSON.stringify(req.body), 'utf8'));
        await store.put({ tenant: req.tenant, mount: this.mount.accessor, path, ciphertext, createdAt: at, updatedAt: at });
        return { status: 204, audit: { keys: Object.keys(req.body).length } };
      }
    }
  }
}
