import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SecretsError } from '../../core/errors.js';
import { VERSION } from '../../core/version.js';
import type { Runtime } from '../../runtime.js';
import { deleteAclPolicy, readAclPolicy, writeAclPolicy } from '../../secrets/acl/policies.js';
import { CAPABILITIES, type EngineRegistry, unsupportedOperation } from '../../secrets/engine.js';
import { optionalDurationSeconds, optionalInt, optionalString, optionalStringList, optionalStringMap } from '../../secrets/fields.js';
import { mountEngine, mountInfo, tuneMount, unmountEngine } from '../../secrets/mounts.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';

/**
 * The `sys/` tree (Vault api-docs/system): init, unseal, seal, mounts, auth (the list), policies,
 * audit-hash, capabilities-self, rotate, key-status. `sys/health`, `sys/seal-status` and `GET sys/init` are public routes of
 * routes.ts (Vault serves them without a token). Seal and keyring operations act on the whole
 * server, so besides the ACL capability they need `secrets:barrier`, an operator action only the
 * `default` tenant's admins hold (src/authz/seed-policies.ts).
 *
 * Further `sys/<name>/…` trees (the lease manager's `sys/leases`) plug in through
 * `SYS_EXTENSIONS` in sys-extensions.ts.
 */
const read = (): VaultPlan => ({ capabilities: ['read'], writes: false });
const update = (writes = true): VaultPlan => ({ capabilities: ['update'], writes });
const barrierCheck = (tenant: string) => ({ action: 'secrets:barrier', resource: { type: 'Rampart::Collection', id: `${tenant}/secrets-barrier` } });

function splitFirst(path: string): [string, string] {
  const i = path.indexOf('/');
  return i === -1 ? [path, ''] : [path.slice(0, i), path.slice(i + 1)];
}

export function sysHandler(runtime: Runtime, registry: EngineRegistry, extensions: Readonly<Record<string, VaultHandler>>, onMountsChanged: (path: string) => void): VaultHandler {
  const seal = runtime.secretsSeal;
  return {
    mountType: 'system',
    needsUnsealed: false,

    plan(req: VaultRequestHead): VaultPlan | Promise<VaultPlan> {
      const [section, rest] = splitFirst(req.path);
      const m = req.method;
      const ext = extensions[section];
      if (ext) return ext.plan({ ...req, path: rest });
      const sudo = (writes: boolean): VaultPlan => ({ capabilities: ['update', 'sudo'], writes, extraChecks: [barrierCheck(req.tenant)] });
      switch (section) {
        case 'init':
          return m === 'PUT' || m === 'POST' ? sudo(true) : unsupportedOperation();
        case 'unseal':
        case 'seal':
        case 'rotate':
          return m === 'PUT' || m === 'POST' ? sudo(section === 'rotate') : unsupportedOperation();
        case 'key-status':
          return m === 'GET' ? { ...read(), extraChecks: [barrierCheck(req.tenant)] } : unsupportedOperation();
        case 'mounts':
          if (m === 'GET') return read();
          if (rest === '') return unsupportedOperation();
          if (m === 'DELETE') return { capabilities: ['delete'], writes: true };
          return m === 'POST' || m === 'PUT' ? update() : unsupportedOperation();
        case 'policy':
        case 'policies': {
          const name = section === 'policy' ? rest : rest.replace(/^acl\/?/, '');
          if (section === 'policies' && !rest.startsWith('acl')) return unsupportedOperation();
          if (m === 'LIST' || (m === 'GET' && name === '')) return { capabilities: [m === 'LIST' ? 'list' : 'read'], writes: false };
          if (m === 'GET') return read();
          if (m === 'DELETE') return { capabilities: ['delete'], writes: true };
          return m === 'POST' || m === 'PUT' ? update() : unsupportedOperation();
        }
        case 'audit-hash':
        case 'capabilities-self':
          return m === 'POST' || m === 'PUT' ? update(false) : unsupportedOperation();
        case 'auth':
          return m === 'GET' && rest === '' ? read() : unsupportedOperation();
        default:
          throw new SecretsError('secrets.not_found', `unsupported path sys/${req.path}`);
      }
    },

    async precheck(req: VaultRequest): Promise<void> {
      const [section, rest] = splitFirst(req.path);
      await extensions[section]?.precheck?.({ ...req, path: rest });
    },

    async handle(req: VaultRequest): Promise<VaultResponse> {
      const [section, rest] = splitFirst(req.path);
      const ext = extensions[section];
      if (ext) return ext.handle({ ...req, path: rest });
      const b = req.body;
      switch (section) {
        case 'init': {
          const shares = optionalInt(b, 'secret_shares', 1, 255);
          const threshold = optionalInt(b, 'secret_threshold', 1, 255);
          if (shares === undefined || threshold === undefined) throw new SecretsError('secrets.invalid_request', 'secret_shares and secret_threshold are required');
          const result = await seal.init(req.stores.secretsKeyring, shares, threshold);
          return { raw: { keys: result.keys, keys_base64: result.keysBase64, root_token: '' }, audit: { secret_shares: shares, secret_threshold: threshold } };
        }
        case 'unseal': {
          const reset = b.reset === true || b.reset === 'true';
          const key = optionalString(b, 'key', 1024);
          if (key === undefined && !reset) throw new SecretsError('secrets.invalid_request', 'key is required');
          const status = await seal.unseal(runtime.stores.secretsKeyring, key, reset);
          return { raw: sealStatusBody(runtime), audit: { progress: status.progress, sealed: status.sealed } };
        }
        case 'seal':
          seal.seal();
          return { status: 204 };
        case 'rotate': {
          const term = await seal.barrier.rotate(req.stores.secretsKeyring, req.clock);
          return { status: 204, audit: { term } };
        }
        case 'key-status': {
          const s = seal.barrier.keyStatus();
          return { flatten: true, data: { term: s.term, install_time: s.installTime } };
        }
        case 'mounts':
          return handleMounts(req, rest, registry, onMountsChanged);
        case 'policy':
        case 'policies':
          return handlePolicies(runtime, req, section === 'policy' ? rest : rest.replace(/^acl\/?/, ''), section === 'policy' ? 'rules' : 'policy');
        case 'capabilities-self':
          return capabilitiesSelf(runtime, req);
        case 'auth':
          // The auth methods are built in and always enabled (enabling and disabling them is not offered).
          return {
            flatten: true,
            data: Object.fromEntries(
              (['token', 'approle', 'cert'] as const).map((type) => [`${type}/`, { type, description: `${type} auth`, accessor: `auth_${type}`, local: false, seal_wrap: false, config: {}, options: null }]),
            ),
          };
        case 'audit-hash': {
          const input = optionalString(b, 'input', 65_536);
          if (input === undefined) throw new SecretsError('secrets.invalid_request', 'input is required');
          return { flatten: true, data: { hash: runtime.auditHasher.hash(input) } };
        }
        default:
          throw new SecretsError('secrets.not_found', `unsupported path sys/${req.path}`);
      }
    },
  };
}

async function handleMounts(req: VaultRequest, path: string, registry: EngineRegistry, onMountsChanged: (path: string) => void): Promise<VaultResponse> {
  const tune = path.endsWith('/tune') ? path.slice(0, -'/tune'.length) : undefined;
  if (req.method === 'GET') {
    const mounts = await req.stores.mounts.list(req.tenant);
    if (path === '') return { flatten: true, data: Object.fromEntries(mounts.map((m) => [`${m.path}/`, mountInfo(m)])) };
    const target = (tune ?? path).replace(/\/+$/, '');
    const mount = mounts.find((m) => m.path === target);
    if (!mount) throw new SecretsError('secrets.not_found', `no mount at ${target}/`);
    if (tune !== undefined) {
      return { flatten: true, data: { description: mount.description, default_lease_ttl: mount.defaultLeaseTtl, max_lease_ttl: mount.maxLeaseTtl, force_no_cache: false, options: mount.options } };
    }
    return { flatten: true, data: mountInfo(mount) };
  }
  if (req.method === 'DELETE') {
    const removed = await unmountEngine(req.stores, registry, req.tenant, path);
    // Vault answers 204 for an unmount of a path that is not mounted, too.
    return { status: 204, audit: { unmounted: removed?.path ?? null }, afterCommit: () => onMountsChanged(path) };
  }
  const config = (req.body.config ?? {}) as Record<string, unknown>;
  if (typeof config !== 'object' || Array.isArray(config)) throw new SecretsError('secrets.invalid_request', 'config: expected an object');
  if (tune !== undefined) {
    const tuned = await tuneMount(req.stores, req.tenant, tune, {
      description: optionalString(req.body, 'description', 1024),
      defaultLeaseTtl: optionalDurationSeconds(req.body, 'default_lease_ttl'),
      maxLeaseTtl: optionalDurationSeconds(req.body, 'max_lease_ttl'),
    });
    return { status: 204, audit: { tuned: tuned.path } };
  }
  const type = optionalString(req.body, 'type', 64);
  if (type === undefined) throw new SecretsError('secrets.invalid_request', 'type is required');
  const mount = await mountEngine(req.stores, registry, req.clock, req.tenant, path, {
    type,
    description: optionalString(req.body, 'description', 1024) ?? '',
    options: optionalStringMap(req.body, 'options') ?? {},
    defaultLeaseTtl: optionalDurationSeconds(config, 'default_lease_ttl') ?? 0,
    maxLeaseTtl: optionalDurationSeconds(config, 'max_lease_ttl') ?? 0,
  });
  return { status: 204, audit: { mounted: mount.path, type: mount.type, accessor: mount.accessor }, afterCommit: () => onMountsChanged(mount.path) };
}

async function handlePolicies(runtime: Runtime, req: VaultRequest, name: string, textField: 'rules' | 'policy'): Promise<VaultResponse> {
  const ports = { aclPolicies: req.stores.aclPolicies, policies: req.stores.policies };
  const author = `${req.principal.type}::${req.principal.id}`;
  if (name === '' && (req.method === 'GET' || req.method === 'LIST')) {
    const names = (await req.stores.aclPolicies.list(req.tenant)).map((p) => p.name);
    return { flatten: true, data: { keys: names, policies: names } };
  }
  if (req.method === 'GET') {
    const p = await readAclPolicy(req.stores.aclPolicies, req.tenant, name);
    return { flatten: true, data: { name: p.name, [textField]: p.hcl } };
  }
  const invalidate = () => runtime.authorizer.invalidate(req.tenant);
  if (req.method === 'DELETE') {
    const removed = await deleteAclPolicy(ports, req.clock, req.tenant, name, author);
    return { status: 204, audit: { policy: name, deleted: removed }, afterCommit: invalidate };
  }
  // Vault takes `policy` on both endpoints and also `rules` on the older sys/policy.
  const text = optionalString(req.body, 'policy', 65_536) ?? optionalString(req.body, 'rules', 65_536);
  if (text === undefined) throw new SecretsError('secrets.invalid_request', "policy: the policy's HCL text is required");
  await writeAclPolicy(ports, req.clock, req.tenant, name, text, author);
  return { status: 204, audit: { policy: name }, afterCommit: invalidate };
}

/**
 * `sys/capabilities-self` `{"paths":[…]}`: the caller's capabilities on each path, as the same
 * Cedar decisions the request path makes would grant them (`root` is never answered: Rampart has
 * no root policy; an admin sees every capability). At most 32 paths per request.
 */
async function capabilitiesSelf(runtime: Runtime, req: VaultRequest): Promise<VaultResponse> {
  const paths = optionalStringList(req.body, 'paths') ?? (optionalString(req.body, 'path', 1024) === undefined ? undefined : [optionalString(req.body, 'path', 1024)!]);
  if (!paths || paths.length === 0 || paths.length > 32) throw new SecretsError('secrets.invalid_request', 'paths: one to 32 paths');
  const answer: Record<string, string[]> = {};
  for (const raw of paths) {
    const path = raw.replace(/^\/+/, '');
    const granted: string[] = [];
    for (const capability of CAPABILITIES) {
      const decision = await runtime.authorizer.authorize({
        tenant: req.tenant,
        principal: req.principal,
        action: `vault:${capability}`,
        resource: { type: 'Rampart::VaultPath', id: path },
        context: { tenant: req.tenant, source_ip: req.sourceIp, mtls: req.principal.authMethod === 'mtls', request_time: Math.floor(req.clock.now().getTime() / 1000) },
      });
      if (decision.decision === 'allow') granted.push(capability);
    }
    answer[raw] = granted.length > 0 ? granted : ['deny'];
  }
  const all = [...new Set(Object.values(answer).flat())].sort();
  return { flatten: true, data: { ...answer, capabilities: all }, audit: { paths } };
}

/** `sys/seal-status` (also the answer of `sys/unseal`). */
/**
 * Vault's cluster ID, a UUID stable for the life of the data: derived from the audit log's
 * verifier key, which is generated once when the store is initialized and kept in it
 * (`audit_log_key`), so every replica of one store reports the same ID and a new store a new one.
 */
const clusterIds = new WeakMap<Runtime, string>();
export function clusterId(runtime: Runtime): string {
  let id = clusterIds.get(runtime);
  if (id === undefined) {
    const h = createHash('sha256').update('rampart cluster id\n').update(runtime.checkpointer.verifierKey).digest();
    // RFC 9562 §5.8: version 8 (custom), variant 10.
    h[6] = (h[6]! & 0x0f) | 0x80;
    h[8] = (h[8]! & 0x3f) | 0x80;
    const hex = h.subarray(0, 16).toString('hex');
    id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    clusterIds.set(runtime, id);
  }
  return id;
}

export const CLUSTER_NAME = 'rampart';

/**
 * Vault's `build_date`: when the running code was built, i.e. when this compiled module was
 * written (`npm run build`); under a TypeScript loader, when the source file last changed.
 */
export const BUILD_DATE = statSync(fileURLToPath(import.meta.url)).mtime.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The cluster fields Vault shows once unsealed (it leaves them out while sealed). */
function clusterFields(runtime: Runtime, sealed: boolean): Record<string, string> {
  return sealed ? {} : { cluster_name: CLUSTER_NAME, cluster_id: clusterId(runtime) };
}

export function sealStatusBody(runtime: Runtime): Record<string, unknown> {
  const s = runtime.secretsSeal.status();
  return {
    type: s.type,
    initialized: s.initialized,
    sealed: s.sealed,
    t: s.t,
    n: s.n,
    progress: s.progress,
    nonce: s.nonce,
    version: VERSION,
    build_date: BUILD_DATE,
    migration: false,
    recovery_seal: false,
    storage_type: runtime.database.dialect,
    ...clusterFields(runtime, s.sealed),
  };
}

/** The status-code parameters of `sys/health`, with Vault's defaults (api-docs/system/health). */
const HEALTH_CODES = {
  activecode: 200,
  standbycode: 429,
  drsecondarycode: 472,
  performancestandbycode: 473,
  sealedcode: 503,
  uninitcode: 501,
} as const;
const BOOLEAN = /^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/;

/**
 * `GET sys/health` (Vault api-docs/system/health). Every Rampart replica is active (there are
 * no standbys, performance standbys or DR secondaries), and the key-file barrier of a server not
 * moved to Shamir shares is operational, not Vault's "uninitialized" (docs/secrets.md): so
 * `standbyok`, `perfstandbyok`, `uninitcode` and the standby and DR codes are validated as Vault
 * validates them but never chosen, and `sealedcode` or `activecode` picks the status. A code
 * outside 100–599 or a malformed flag is a 400.
 */
export function healthAnswer(runtime: Runtime, query: Readonly<Record<string, string>>): { status: number; body: Record<string, unknown> } {
  const codes: Record<keyof typeof HEALTH_CODES, number> = { ...HEALTH_CODES };
  for (const name of Object.keys(HEALTH_CODES) as (keyof typeof HEALTH_CODES)[]) {
    const given = query[name];
    if (given === undefined) continue;
    const n = /^[0-9]{3}$/.test(given) ? Number(given) : NaN;
    if (!(n >= 100 && n <= 599)) throw new SecretsError('secrets.invalid_request', `${name} must be an HTTP status code from 100 to 599`);
    codes[name] = n;
  }
  for (const flag of ['standbyok', 'perfstandbyok']) {
    const given = query[flag];
    // Vault treats a flag given without a value as true.
    if (given !== undefined && given !== '' && !BOOLEAN.test(given)) throw new SecretsError('secrets.invalid_request', `${flag} must be a boolean`);
  }
  const s = runtime.secretsSeal.status();
  const status = s.sealed ? codes.sealedcode : codes.activecode;
  return {
    status,
    body: {
      initialized: s.initialized,
      sealed: s.sealed,
      standby: false,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(runtime.clock.now().getTime() / 1000),
      version: VERSION,
      enterprise: false,
      ...clusterFields(runtime, s.sealed),
    },
  };
}
