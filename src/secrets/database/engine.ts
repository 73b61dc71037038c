import { DatabaseError, SecretsError } from '../../core/errors.js';
import type { Transact } from '../../store/stores.js';
import type { Capability, EngineFactory, EnginePlan, EngineRequest, EngineRequestHead, EngineResponse, Mount, SecretsEngine } from '../engine.js';
import { configView } from './config.js';
import {
  type EngineDeps,
  type PreparedConfig,
  type RootRotation,
  applyRootRotation,
  beginRootRotation,
  finishRootRotation,
  prepareConfig,
  requireConfig,
  rotateRoot,
  settleConnection,
  settleRootRotation,
  storeConfig,
  writeConfig,
} from './connections.js';
import { type CredentialRequest, createCredential, type IssuedCredential, issueCredential, PROVISIONAL_LEASE_MS, recordCredential } from './dynamic-credentials.js';
import type { DatabasePlugin } from './plugin.js';
import { PostgresqlPlugin } from './postgresql-plugin.js';
import { parseRole, roleView } from './role.js';
import { PENDING_ROTATION_MS } from './password-slot.js';
import {
  type StaticRotationStep,
  applyStaticRotation,
  beginStaticRotation,
  draftStaticRole,
  finishStaticRotation,
  requireStaticRole,
  rotate,
  staticCredentials,
  updateStaticRole,
  writeStaticRole,
} from './static-credentials.js';
import { type StaticRole, staticRoleView } from './static-role.js';
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
  /**
   * Users `precheck` created, by request id (server-generated UUIDs), until `handle` records
   * them. An entry whose request never reached `handle` is dropped with its provisional lease's
   * deadline; the expiry worker drops the user.
   */
  readonly #created = new Map<string, IssuedCredential>();
  /**
   * What `precheck` did for an administrative write, by request id, until `handle` records it: a
   * connection verified, or a password set on the target (pending in the store). An entry whose
   * request never reached `handle` is dropped; a root password it left pending is finished at
   * the connection's next use (settleRootRotation) or, after a restart, by the static rotation
   * worker's first pass; a static role's is rotated anew when due.
   */
  readonly #prepared = new Map<string, { readonly config: PreparedConfig } | { readonly root: RootRotation } | { readonly rotation: StaticRotationStep }>();

  constructor(
    private readonly mount: Mount,
    private readonly plugin: DatabasePlugin,
  ) {}

  /**
   * Every call to the target database, outside the store transaction: `creds/<role>` creates its
   * user (see createCredential); `config/<name>` verifies the login; `rotate-root`,
   * `rotate-role` and a new static role set a password, in the crash-safe order of
   * password-slot.ts (pending in the store, then `ALTER ROLE`, then current in `handle`).
   */
  async precheck(req: EngineRequest, transact: Transact): Promise<void> {
    const { section, name } = split(req.path);
    if (name === '') return;
    const deps: EngineDeps = { plugin: this.plugin, sealer: req.sealer, clock: req.clock };
    const store = req.stores.database;
    const t = req.tenant;
    const a = this.mount.accessor;
    const writes = req.method === 'POST' || req.method === 'PUT';
    if (section === 'creds' && req.method === 'GET') {
      const role = await store.getRole(t, a, name);
      if (role) await settleConnection(store, transact, deps, t, a, role.dbName);
      this.#created.set(req.requestId, await createCredential({ database: store, transact }, deps, this.#credentialRequest(req, name)));
      setTimeout(() => this.#created.delete(req.requestId), PROVISIONAL_LEASE_MS).unref();
    } else if (section === 'config' && writes) {
      this.#prepare(req, { config: await prepareConfig(store, transact, deps, t, a, name, req.body) });
    } else if (section === 'rotate-root' && writes) {
      await settleRootRotation(transact, deps, await requireConfig(store, t, a, name));
      const root = await transact(({ database }) => beginRootRotation(database, deps, t, a, name));
      await applyRootRotation(store, transact, deps, root);
      this.#prepare(req, { root });
    } else if ((section === 'rotate-role' && writes) || (section === 'static-roles' && writes && !(await store.getStaticRole(t, a, name)))) {
      const isNew = section === 'static-roles';
      const role = isNew ? await draftStaticRole(store, deps, t, a, name, req.body) : await requireStaticRole(store, t, a, name);
      await settleConnection(store, transact, deps, t, a, role.dbName);
      const rotation = await transact(({ database }) => beginStaticRotation(database, deps, role, isNew));
      await applyStaticRotation(transact, deps, rotation);
      this.#prepare(req, { rotation });
    }
  }

  #prepare(req: EngineRequest, done: { readonly config: PreparedConfig } | { readonly root: RootRotation } | { readonly rotation: StaticRotationStep }): void {
    this.#prepared.set(req.requestId, done);
    setTimeout(() => this.#prepared.delete(req.requestId), PENDING_ROTATION_MS).unref();
  }

  /** What `precheck` did for this request, once. */
  #take(req: EngineRequest) {
    const done = this.#prepared.get(req.requestId);
    this.#prepared.delete(req.requestId);
    return done;
  }

  #credentialRequest(req: EngineRequest, role: string): CredentialRequest {
    return { tenant: req.tenant, mount: this.mount, role, displayName: req.principal.displayName };
  }

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
        const done = this.#take(req);
        if (done && 'config' in done) await storeConfig(store, done.config);
        else await writeConfig(store, deps, t, a, name, req.body);
        return { status: 204, audit: { connection: name } };
      }
      case 'rotate-root': {
        const done = this.#take(req);
        if (done && 'root' in done) await finishRootRotation(store, deps, done.root);
        else await rotateRoot(store, deps, t, a, name);
        return { status: 204, audit: { connection: name } };
      }
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
        const created = this.#created.get(req.requestId);
        this.#created.delete(req.requestId);
        if (created) await recordCredential(req.stores.leases, created);
        const issued = created ?? (await issueCredential(req.stores, deps, this.#credentialRequest(req, name)));
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
        const done = this.#take(req);
        const existing = done ? undefined : await store.getStaticRole(t, a, name);
        const role =
          done && 'rotation' in done ? await finishStaticRotation(store, deps, done.rotation) : existing ? await updateStaticRole(store, existing, req.body) : await writeStaticRole(store, deps, t, a, name, req.body);
        await this.#announceRotation(req, role);
        return { status: 204, audit: { static_role: name, username: role.username } };
      }
      case 'static-creds':
        return { data: staticCredentials(await requireStaticRole(store, t, a, name), deps), audit: { static_role: name } };
      case 'rotate-role': {
        const done = this.#take(req);
        const role = done && 'rotation' in done ? await finishStaticRotation(store, deps, done.rotation) : await rotate(store, deps, await requireStaticRole(store, t, a, name));
        await this.#announceRotation(req, role);
        return { status: 204, audit: { static_role: name, username: role.username } };
      }
    }
  }

  /**
   * A password set by hand (`rotate-role`, or a static role written anew) is announced like a
   * scheduled rotation, in the same transaction, so `watchSecret({ staticRole })` re-reads it.
   */
  async #announceRotation(req: EngineRequest, role: StaticRole): Promise<void> {
    await req.stores.rotation.appendEvent({
      tenant: req.tenant,
      kind: 'database.static.rotated',
      mountPath: this.mount.path,
      path: role.name,
      version: null,
      occurredAt: role.lastRotatedAt,
      previousReadableUntil: null,
    });
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
