import type { FastifyPluginAsync } from 'fastify';
import { SecretsError } from '../../core/errors.js';
import { appRoleLogin, findSecretId, generateSecretId, requireAppRole, writeAppRole } from '../../identity/approle.js';
import { cidrListField } from '../../identity/cidr.js';
import type { AppRoleRecord, AppRoleSecretIdRecord } from '../../identity/store.js';
import type { Runtime } from '../../runtime.js';
import { optionalBool, optionalDurationSeconds, optionalInt, optionalString, optionalStringList } from '../../secrets/fields.js';
import { authBlock } from './auth-response.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';
import { vaultNamespaceTenant } from './namespace.js';
import { requestedWrapTtl, wrapAnswer } from './wrapping.js';
import { unsupportedOperation } from '../../secrets/engine.js';

/**
 * `auth/approle/…` (Vault api-docs/auth/approle): role management through the Vault route, and
 * `login`, which has no token to authenticate with: its own route below, audited like any
 * request (the credentials in the body are what authenticates it), and wrapped on
 * `X-Vault-Wrap-TTL` like any Vault answer.
 */
function parse(path: string): { name: string; sub: string } | undefined {
  const m = /^role\/([^/]+)(?:\/(role-id|secret-id|secret-id\/lookup|secret-id\/destroy|secret-id-accessor\/destroy))?$/.exec(path);
  return m ? { name: m[1]!, sub: m[2] ?? '' } : undefined;
}

function policiesOf(body: Readonly<Record<string, unknown>>): string[] | undefined {
  return optionalStringList(body, 'token_policies') ?? optionalStringList(body, 'policies');
}

/**
 * Vault AppRole fields that would change what a role or secret ID allows and that Rampart does
 * not honour: refused with 400 naming the field rather than stored and ignored, as token roles
 * do (src/identity/token-roles.ts). Each is read with the parser every other field uses, so a
 * value that means Vault's default in any form a client sends it (`false`, `"false"`, `0`, `"0s"`,
 * `""`) passes; `asks` says whether the body asks for what is not offered.
 */
interface Unsupported {
  readonly asks: (body: Readonly<Record<string, unknown>>) => boolean;
  readonly reason: string;
}

const positive = (n: number | undefined): boolean => (n ?? 0) > 0;

const UNSUPPORTED_ROLE_FIELDS: Readonly<Record<string, Unsupported>> = {
  bind_secret_id: { asks: (b) => optionalBool(b, 'bind_secret_id') === false, reason: 'logins without a secret ID are not offered' },
  local_secret_ids: { asks: (b) => optionalBool(b, 'local_secret_ids') === true, reason: 'local secret IDs are not offered (Rampart has no performance replicas)' },
  token_num_uses: { asks: (b) => positive(optionalInt(b, 'token_num_uses')), reason: 'use-limited AppRole tokens are not offered' },
  token_explicit_max_ttl: { asks: (b) => positive(optionalDurationSeconds(b, 'token_explicit_max_ttl')), reason: 'use token_max_ttl' },
  token_no_default_policy: { asks: (b) => optionalBool(b, 'token_no_default_policy') === true, reason: 'AppRole tokens always carry the default policy' },
  token_type: {
    asks: (b) => !['', 'default', 'service', 'default-service'].includes(optionalString(b, 'token_type', 32) ?? ''),
    reason: 'batch tokens are not offered',
  },
};

/** Per-secret-ID restrictions of `role/<name>/secret-id`: only the role's own are offered. */
const UNSUPPORTED_SECRET_ID_FIELDS: Readonly<Record<string, Unsupported>> = {
  cidr_list: { asks: (b) => (cidrListField(b, 'cidr_list') ?? []).length > 0, reason: "per-secret-ID CIDR blocks are not offered; set the role's secret_id_bound_cidrs" },
  token_bound_cidrs: {
    asks: (b) => (cidrListField(b, 'token_bound_cidrs') ?? []).length > 0,
    reason: "per-secret-ID token CIDR blocks are not offered; set the role's token_bound_cidrs",
  },
  num_uses: { asks: (b) => positive(optionalInt(b, 'num_uses')), reason: "per-secret-ID use limits are not offered; set the role's secret_id_num_uses" },
  ttl: { asks: (b) => positive(optionalDurationSeconds(b, 'ttl')), reason: "per-secret-ID TTLs are not offered; set the role's secret_id_ttl" },
};

function refuseUnsupported(body: Readonly<Record<string, unknown>>, fields: Readonly<Record<string, Unsupported>>): void {
  for (const [field, { asks, reason }] of Object.entries(fields)) {
    if (asks(body)) throw new SecretsError('secrets.invalid_request', `${field}: ${reason}`);
  }
}

export function appRoleHandler(): VaultHandler {
  return {
    mountType: 'approle',
    needsUnsealed: false,

    plan(req: VaultRequestHead): VaultPlan {
      const m = req.method;
      if (req.path === 'role' || req.path === 'role/') {
        if (m === 'LIST') return { capabilities: ['list'], writes: false };
        unsupportedOperation();
      }
      const target = parse(req.path);
      if (!target) throw new SecretsError('secrets.not_found', `unsupported path auth/approle/${req.path}`);
      if (m === 'GET') return target.sub === '' || target.sub === 'role-id' ? { capabilities: ['read'], writes: false } : unsupportedOperation();
      if (m === 'DELETE' && target.sub === '') return { capabilities: ['delete'], writes: true };
      if (target.sub === 'secret-id/lookup') return m === 'POST' || m === 'PUT' ? { capabilities: ['update'], writes: false } : unsupportedOperation();
      if (m === 'POST' || m === 'PUT') return { capabilities: ['update'], writes: true };
      return unsupportedOperation();
    },

    async handle(req: VaultRequest): Promise<VaultResponse> {
      const store = req.stores.appRoles;
      if (req.method === 'LIST') {
        const keys = await store.listRoles(req.tenant);
        if (keys.length === 0) throw new SecretsError('secrets.not_found', 'no roles');
        return { data: { keys } };
      }
      const { name, sub } = parse(req.path)!;
      const b = req.body;
      if (sub === '') {
        if (req.method === 'GET') {
          const r = await requireAppRole(store, req.tenant, name);
          return {
            data: {
              token_policies: r.policies,
              policies: r.policies,
              secret_id_ttl: r.secretIdTtl,
              secret_id_num_uses: r.secretIdNumUses,
              token_ttl: r.tokenTtl,
              token_max_ttl: r.tokenMaxTtl,
              token_period: r.tokenPeriod,
              secret_id_bound_cidrs: r.secretIdBoundCidrs,
              token_bound_cidrs: r.tokenBoundCidrs,
              bind_secret_id: true,
            },
          };
        }
        if (req.method === 'DELETE') {
          await store.deleteRole(req.tenant, name);
          return { status: 204, audit: { role: name } };
        }
        refuseUnsupported(b, UNSUPPORTED_ROLE_FIELDS);
        await writeAppRole(store, req.clock, req.tenant, name, {
          policies: policiesOf(b),
          secretIdTtl: optionalDurationSeconds(b, 'secret_id_ttl'),
          secretIdNumUses: optionalInt(b, 'secret_id_num_uses', 0, 1_000_000),
          tokenTtl: optionalDurationSeconds(b, 'token_ttl'),
          tokenMaxTtl: optionalDurationSeconds(b, 'token_max_ttl'),
          tokenPeriod: optionalDurationSeconds(b, 'token_period') ?? optionalDurationSeconds(b, 'period'),
          // `bound_cidr_list` is Vault's deprecated name for secret_id_bound_cidrs.
          secretIdBoundCidrs: cidrListField(b, 'secret_id_bound_cidrs') ?? cidrListField(b, 'bound_cidr_list'),
          tokenBoundCidrs: cidrListField(b, 'token_bound_cidrs'),
        });
        return { status: 204, audit: { role: name } };
      }
      const role = await requireAppRole(store, req.tenant, name);
      if (sub === 'role-id') {
        if (req.method === 'GET') return { data: { role_id: role.roleId } };
        const roleId = optionalString(b, 'role_id', 256);
        if (!roleId) throw new SecretsError('secrets.invalid_request', 'role_id is required');
        await store.putRole({ ...role, roleId });
        return { status: 204, audit: { role: name } };
      }
      if (sub === 'secret-id/lookup' || sub === 'secret-id/destroy' || sub === 'secret-id-accessor/destroy') return secretIdAction(req, role, sub);
      refuseUnsupported(b, UNSUPPORTED_SECRET_ID_FIELDS);
      const issued = await generateSecretId(store, req.clock, role);
      return {
        data: { secret_id: issued.secretId, secret_id_accessor: issued.accessor, secret_id_ttl: role.secretIdTtl, secret_id_num_uses: role.secretIdNumUses },
        audit: { role: name, secret_id_accessor: issued.accessor },
      };
    },
  };
}

/** Lookup and destroy of one secret ID, named by the secret ID or by its accessor. */
async function secretIdAction(req: VaultRequest, role: AppRoleRecord, sub: string): Promise<VaultResponse> {
  const store = req.stores.appRoles;
  let record: AppRoleSecretIdRecord | undefined;
  if (sub === 'secret-id-accessor/destroy') {
    const accessor = optionalString(req.body, 'secret_id_accessor', 64);
    if (!accessor) throw new SecretsError('secrets.invalid_request', 'secret_id_accessor is required');
    const found = await store.getSecretId(accessor);
    record = found && found.tenant === role.tenant && found.role === role.name ? found : undefined;
  } else {
    const secretId = optionalString(req.body, 'secret_id', 256);
    if (!secretId) throw new SecretsError('secrets.invalid_request', 'secret_id is required');
    record = await findSecretId(store, role, secretId);
  }
  if (!record) throw new SecretsError('secrets.not_found', 'no such secret ID for this role');
  if (sub === 'secret-id/lookup') {
    return {
      data: {
        secret_id_accessor: record.accessor,
        secret_id_num_uses: record.usesLeft ?? 0,
        creation_time: record.createdAt,
        expiration_time: record.expiresAt ?? '0001-01-01T00:00:00Z',
      },
    };
  }
  await store.deleteSecretId(record.accessor);
  return { status: 204, audit: { role: role.name, destroyed_secret_id_accessor: record.accessor } };
}

/** `POST /v1/auth/approle/login`: the namespace header names the tenant (default: `default`). */
export const appRoleLoginRoute =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    app.post('/v1/auth/approle/login', { config: { vault: true, credentialsInBody: true }, schema: { hide: true } }, async (req, reply) => {
      const ctx = req.rampart;
      const named = req.headers['x-rampart-tenant'] ?? vaultNamespaceTenant(req.headers['x-vault-namespace']);
      if (named !== undefined && typeof named !== 'string') throw new SecretsError('secrets.invalid_request', 'name one namespace');
      ctx.action = 'vault:login';
      ctx.resource = { type: 'Rampart::VaultPath', id: 'auth/approle/login' };
      // An unknown namespace is one more way for a login to fail, answered like the others.
      const found = await runtime.stores.tenants.get(named || 'default');
      if (!found) throw new SecretsError('secrets.login_failed', 'invalid role ID or secret ID');
      ctx.tenant = found.name;
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body !== 'object' || Array.isArray(body)) throw new SecretsError('secrets.invalid_request', 'the body must be a JSON object');
      const roleId = optionalString(body, 'role_id', 256);
      const secretId = optionalString(body, 'secret_id', 256);
      if (!roleId || !secretId) throw new SecretsError('secrets.invalid_request', 'role_id and secret_id are required');
      const tenant = ctx.tenant;
      // Vault wraps login answers like any other: the token is sealed in the login's transaction
      // and only `wrap_info` leaves (wrapping.ts).
      const wrapTtl = requestedWrapTtl(req);
      const envelope = await ctx.transact<Record<string, unknown>>(200, async (stores) => {
        const r = await appRoleLogin(stores, runtime.clock, tenant, roleId, secretId, req.ip);
        const details = { role: r.role.name, created_accessor: r.record.accessor, policies: r.record.policies };
        const auth = authBlock(r.record, r.token, runtime.clock, { role_name: r.role.name });
        const answer = { request_id: req.id, lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth };
        if (wrapTtl === undefined) return { result: answer, details };
        const wrapped = await wrapAnswer(runtime, stores, { tenant, fullPath: 'auth/approle/login' }, wrapTtl, { auth }, 200, answer);
        return { result: { ...answer, auth: null, wrap_info: wrapped!.wrapInfo }, details: { ...details, ...wrapped!.audit } };
      });
      return reply.header('content-type', 'application/json').send(JSON.stringify(envelope));
    });
  };
