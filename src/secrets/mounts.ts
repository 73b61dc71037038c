import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { SecretsError } from '../core/errors.js';
import type { Stores } from '../store/stores.js';
import type { EngineRegistry, EngineType, Mount } from './engine.js';

/**
 * `sys/mounts`: where engines live in a tenant's Vault path space. A mount path is one or more
 * segments; it may not shadow Rampart's own `/v1/` API or Vault's built-in trees (their first
 * segments are reserved), and two mounts of a tenant may not nest, so every path has at most
 * one engine.
 */
export const RESERVED_FIRST_SEGMENTS: ReadonlySet<string> = new Set([
  // Vault's built-in trees
  'sys',
  'auth',
  'identity',
  'cubbyhole',
  // Rampart's own API under /v1/
  'tenants',
  'tokens',
  'audit',
  'pki',
  'authz',
  'health',
  'openapi.json',
  'metrics',
  'agent',
  'agents',
]);

const PATH_RE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

/** Strips Vault's optional slashes and checks the path; throws `secrets.invalid_request` or `secrets.mount_path_reserved`. */
export function normalizeMountPath(path: string): string {
  const p = path.replace(/^\/+|\/+$/g, '');
  if (p.length === 0 || p.length > 128 || !PATH_RE.test(p) || p.split('/').some((s) => s === '.' || s === '..')) {
    throw new SecretsError('secrets.invalid_request', 'a mount path is 1–128 characters of segments of A-Z a-z 0-9 _ . -');
  }
  if (RESERVED_FIRST_SEGMENTS.has(p.split('/')[0]!)) {
    throw new SecretsError('secrets.mount_path_reserved', `"${p}" would shadow a built-in path; choose another`);
  }
  return p;
}

/** The mount serving `path`, by the longest mount path that is `path` or a folder of it. */
export function resolveMount(mounts: readonly Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    if ((path === m.path || path.startsWith(`${m.path}/`)) && (!best || m.path.length > best.path.length)) best = m;
  }
  return best;
}

export interface MountInput {
  readonly type: string;
  readonly description: string;
  readonly options: Readonly<Record<string, string>>;
  readonly defaultLeaseTtl: number;
  readonly maxLeaseTtl: number;
}

/** Vault's mount type aliases (`vault secrets enable kv-v2`): `kv` with that version option. */
const KV_ALIASES: Readonly<Record<string, string>> = { 'kv-v1': '1', 'kv-v2': '2' };

export async function mountEngine(stores: Stores, registry: EngineRegistry, clock: Clock, tenant: string, path: string, given: MountInput): Promise<Mount> {
  const p = normalizeMountPath(path);
  const aliased = KV_ALIASES[given.type];
  const input = aliased === undefined ? given : { ...given, type: 'kv', options: { ...given.options, version: aliased } };
  const factory = registry.factory(input.type);
  await stores.mounts.lockTenant(tenant);
  const existing = await stores.mounts.list(tenant);
  const clash = existing.find((m) => m.path === p || p.startsWith(`${m.path}/`) || m.path.startsWith(`${p}/`));
  if (clash) throw new SecretsError('secrets.mount_in_use', `path is already in use at ${clash.path}/`);
  const mount: Mount = {
    tenant,
    path: p,
    type: factory.type as EngineType,
    accessor: `${factory.type}_${randomBytes(4).toString('hex')}`,
    description: input.description,
    options: factory.normalizeOptions ? factory.normalizeOptions(input.options) : { ...input.options },
    defaultLeaseTtl: input.defaultLeaseTtl,
    maxLeaseTtl: input.maxLeaseTtl,
    createdAt: clock.now().toISOString(),
  };
  if (!(await stores.mounts.insert(mount))) throw new SecretsError('secrets.mount_in_use', `path is already in use at ${p}/`);
  return mount;
}

/** Removes the mount and, in the same transaction, everything its engine stored. */
export async function unmountEngine(stores: Stores, registry: EngineRegistry, tenant: string, path: string): Promise<Mount | undefined> {
  const p = path.replace(/^\/+|\/+$/g, '');
  const mount = (await stores.mounts.list(tenant)).find((m) => m.path === p);
  if (!mount) return undefined;
  await registry.factory(mount.type).purge?.(stores, mount);
  await stores.mounts.delete(tenant, p);
  return mount;
}

export async function tuneMount(stores: Stores, tenant: string, path: string, change: Partial<Pick<Mount, 'description' | 'defaultLeaseTtl' | 'maxLeaseTtl'>>): Promise<Mount> {
  const p = path.replace(/^\/+|\/+$/g, '');
  const mount = (await stores.mounts.list(tenant)).find((m) => m.path === p);
  if (!mount) throw new SecretsError('secrets.not_found', `no mount at ${p}/`);
  const tuned: Mount = {
    ...mount,
    description: change.description ?? mount.description,
    defaultLeaseTtl: change.defaultLeaseTtl ?? mount.defaultLeaseTtl,
    maxLeaseTtl: change.maxLeaseTtl ?? mount.maxLeaseTtl,
  };
  await stores.mounts.update(tuned);
  return tuned;
}

/** A mount as Vault's `sys/mounts` lists it. */
export function mountInfo(m: Mount): Record<string, unknown> {
  return {
    type: m.type,
    description: m.description,
    accessor: m.accessor,
    config: { default_lease_ttl: m.defaultLeaseTtl, max_lease_ttl: m.maxLeaseTtl, force_no_cache: false },
    options: m.options,
    local: false,
    seal_wrap: false,
    external_entropy_access: false,
  };
}
