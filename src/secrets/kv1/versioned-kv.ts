import { SecretsError } from '../../core/errors.js';
import type { EngineFactory } from '../engine.js';
import { Kv1Engine } from './engine.js';

/**
 * The `kv` engine type with both of Vault's versions: `options.version` "1" mounts KV version 1
 * (this folder), "2" (the default) the KV v2 factory given. Vault's `kv-v1` and `kv-v2` mount
 * types arrive here as `kv` with that version (src/secrets/mounts.ts). The version is fixed at
 * mount time: a mount is never upgraded in place.
 */
export function versionedKvEngine(v2: EngineFactory): EngineFactory {
  const isV1 = (options: Readonly<Record<string, string>>) => options.version === '1';
  return {
    type: v2.type,
    normalizeOptions(options) {
      const version = options.version ?? '2';
      if (version !== '1' && version !== '2') throw new SecretsError('secrets.invalid_request', 'options.version must be "1" or "2"');
      if (version === '1') return { ...options, version: '1' };
      return v2.normalizeOptions ? v2.normalizeOptions(options) : { ...options, version: '2' };
    },
    create: (mount) => (isV1(mount.options) ? new Kv1Engine(mount) : v2.create(mount)),
    async purge(stores, mount) {
      if (isV1(mount.options)) await stores.kv1.purgeMount(mount.tenant, mount.accessor);
      else await v2.purge?.(stores, mount);
    },
  };
}
