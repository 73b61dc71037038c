import { DatabaseError, SecretsError } from '../../core/errors.js';
import type { Capability, EngineFactory, EnginePlan, EngineRequest, EngineRequestHead, EngineResponse, Mount, SecretsEngine } from '../engine.js';
import { configView } from './config.js';
import { type EngineDeps, requireConfig, rotateRoot, writeConfig } from './connections.js';
import { issueCredential } from './dynamic-credentials.js';
import type { DatabasePlugin } from './plugin.js';
import { PostgresqlPlugin } from './postgresql-plugin.js';
import { parseRole, roleView } from './role.js';
import { requireStaticRole, rotate, staticCredentials, writeStaticRole } from './static-credentials.js';
import { staticRoleView } from './static-role.js';
import { unsupportedOperation } from '../engine.js';

/**
 * The database secrets engine's paths
 * (https://developer.hashicorp.com/vault/api-docs/secret/databases): `config/<name>`,
 * `rotate-root/<name>`, `roles/<name>`, `creds/<role>`, `static-roles/<name>`,
 * `static-creds/<name>`, `rotate-role/<name>`, and LIST on `config`, `roles`, `static-roles`.
 * Records are keyed by the mount's accessor; lease ids carry the mount's path, as Vault's do.
 */
type Section = 'config' | 'rotate-root' | 'roles' | 'creds' | 'static-roles' | 'static-creds' | 'rotate-role';
const SECTIONS = new Set<string>(['config', 'rotate-root', 'roles', 'creds', 'static-roles', 'static-creds', 'rotate-role']);

/**
 * The process's PostgreSQL plugin: one connection-pool cache shared by every database mount and
 * by the lease expiry worker (runtime wiring passes it to {@link DatabaseLeaseBackend}).
 */
export const databasePlugin: DatabasePlugin = new PostgresqlPlugin();

function split(path: string): { section: Section; name: string } {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  const slash = trimmed.indexOf('/');
  const section = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const name = slash === -1 ? '' : trimmed.slice(slash + 1);
  if (!SECTIONS.has(section) || name.includes('/')) throw new SecretsError('secrets.not_found', `unsupported path "${path}"`);
  return { section: section as Section, name };
}

function plan(capability: Capability, writes: boolean): EnginePlan {
  return { capabilities: [capability], writes };
}

class DatabaseEngine implements SecretsEngine {
  constructor(
    private readonly mount: Mount,
    private readonly plugin: DatabasePlugin,
  ) {}

  async plan(req: EngineRequestHead): Promise<EnginePlan> {
    const { section, name } = split(req.path);
    const m = req.method;
    const listable = section === 'config' || section === 'roles' || section === 'static-roles';
    if (name === '') return listable && (m === 'LIST' || m === 'GET') ? plan('list', false) : unsupportedOperation();
    const s = req.stores.database;
    const a = this.mount.accessor;
    switch (section) {
      case 'config':
      case 'roles':
      case 'static-roles': {
        if (m === 'GET') return plan('read', false);
        if (m === 'DELETE') return plan('delete', true);
        if (m !== 'POST' && m !== 'PUT') return unsupportedOperation();
        const exists =
          section === 'config' ? await s.getConfig(req.tenant, a, name) : section === 'roles' ? await s.getRole(req.tenant, a, name) : await s.getStaticRole(req.tenant, a, name);
        return plan(exists ? 'update' : 'create', true);
      }
      // Reading credentials writes a lease: a read capability, run in one transaction.
      case 'creds':
        return m === 'GET' ? plan('read', true) : unsupportedOperation();
      case 'static-creds':
        return m === 'GET' ? plan('read', false) : unsupportedOperation();
      case 'rotate-root':
      case 'rotate-role':
        return m === 'POST' || m === 'PUT' ? plan('update', true) : unsupportedOperation();
    }
  }

  async handle(req: EngineRequest): Promise<EngineResponse> {
    const { section, name } = split(req.path);
    const store = req.stores.database;
    const deps: EngineDeps = { plugin: this.plugin, sealer: req.sealer, clock: req.clock };
    const t = req.tenant;
    const a = this.mount.accessor;
    if (name === '') {
      const keys = section === 'config' ? await store.listConfigs(t, a) : section === 'roles' ? await store.listRoles(t, a) : await store.listStaticRoles(t, a);
      if (keys.length === 0) throw new SecretsError('secrets.not_found', 'no entries');
      return { data: { keys }, audit: { count: keys.length } };
    }
    switch (section) {
      case 'config': {
        if (req.method === 'GET') return { data: configView(await requireConfig(store, t, a, name)) };
        if (req.method === 'DELETE') {
          await store.deleteConfig(t, a, name);
          return { status: 204, audit: { connection: name } };
        }
        await writeConfig(store, deps, t, a, name, req.body);
        return { status: 204, audit: { connection: name } };
      }
      case 'rotate-root':
        await rotateRoot(store, deps, t, a, name);
        return { status: 204, audit: { connection: name } };
      case 'roles': {
        if (req.method === 'GET') {
          const role = await store.getRole(t, a, name);
          if (!role) throw new DatabaseError('database.role_not_found', `unknown role: ${name}`);
          return { data: roleView(role) };
        }
        if (req.method === 'DELETE') {
          await store.deleteRole(t, a, name);
          return { status: 204, audit: { role: name } };
        }
        const role = parseRole(t, a, name, req.body, req.clock.now());
        await requireConfig(store, t, a, role.dbName);
        await store.putRole(role);
        return { status: 204, audit: { role: name } };
      }
      case 'creds': {
        const issued = await issueCredential({ database: store, leases: req.stores.leases }, deps, {
          tenant: t,
          mount: this.mount,
          role: name,
          displayName: req.principal.displayName,
        });
        return {
          data: { username: issued.username, password: issued.password },
          leaseId: issued.lease.leaseId,
          leaseDuration: issued.lease.defaultTtlSeconds,
          renewable: issued.lease.renewable,
          // The lease id and the user name are not secret; the password never enters the audit log.
          audit: { lease_id: issued.lease.leaseId, username: issued.username, role: name },
        };
      }
      case 'static-roles': {
        if (req.method === 'GET') return { data: staticRoleView(await requireStaticRole(store, t, a, name)) };
        if (req.method === 'DELETE') {
          await store.deleteStaticRole(t, a, name);
          return { status: 204, audit: { static_role: name } };
        }
        const role = await writeStaticRole(store, deps, t, a, name, req.body);
        return { status: 204, audit: { static_role: name, username: role.username } };
      }
      case 'static-creds':
        return { data: staticCredentials(await requireStaticRole(store, t, a, name), deps), audit: { static_role: name } };
      case 'rotate-role': {
        const role = await rotate(store, deps, await requireStaticRole(store, t, a, name));
        return { status: 204, audit: { static_role: name, username: role.username } };
      }
    }
  }
}

export const databaseEngine: EngineFactory = {
  type: 'database',
  create: (mount) => new DatabaseEngine(mount, databasePlugin),
  async purge(stores, mount) {
    // Fail closed: the mount's connections are what revoke its users, so they go only after
    // every lease is revoked (Vault revokes on unmount; here the caller does it first).
    if ((await stores.leases.listByPrefix(mount.tenant, `${mount.path}/`, { limit: 1 })).length > 0) {
      throw new SecretsError('secrets.invalid_request', `the mount still has leases: revoke them first with sys/leases/revoke-prefix/${mount.path}`);
    }
    await stores.database.purgeMount(mount.tenant, mount.accessor);
  },
};
