import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { EntityRef } from '../../audit/event.js';
import { SecretsError } from '../../core/errors.js';
import { VERSION } from '../../core/version.js';
import type { Runtime } from '../../runtime.js';
import { EngineRegistry, type Mount, type VaultMethod } from '../../secrets/engine.js';
import { BUILTIN_ENGINES } from '../../secrets/engines.js';
import { resolveMount } from '../../secrets/mounts.js';
import { authorizeRequest } from '../authorize.js';
import { recordSecretRead } from './anomaly-events.js';
import { appRoleHandler, appRoleLoginRoute } from './auth-approle.js';
import { certAuthHandler } from './auth-cert.js';
import { tokenAuthHandler } from './auth-token.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';
import { MountIndex } from './mount-index.js';
import { SYS_EXTENSIONS } from './sys-extensions.js';
import { sealStatusBody, sysHandler } from './sys.js';

/**
 * The Vault-compatible HTTP API under `/v1/` (docs/secrets.md): `sys/…`, `auth/token/…` and
 * `/<mount path>/…` of every mounted engine, in Vault's request and response shapes.
 *
 * One wildcard route serves them all. Fastify prefers static and parametric routes, so none of
 * Rampart's own routes is shadowed; and the wildcard matches only when the first segment is
 * `sys`, `auth` or a mount path of some tenant (the `vaultPath` route constraint), so any other
 * unknown `/v1/…` path still gets Rampart's own 404. The request path of app.ts stays the one
 * path: authentication, then `authz.plan` below asks the engine which ACL capabilities the
 * request needs and Cedar decides each, then the handler runs (in one transaction with its audit
 * event when it writes), and errors answer `{"errors":[…]}` (errors.ts).
 *
 * Node's HTTP parser refuses the non-standard `LIST` method before any application code runs,
 * so LIST reaches Rampart as Vault's own Go client sends it: `GET …?list=true`.
 */
const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH'] as const;
const VAULT_PATH = 'Rampart::VaultPath';

interface Resolved {
  readonly handler: VaultHandler;
  readonly head: VaultRequestHead;
  readonly plan: VaultPlan;
}

function vaultMethod(req: FastifyRequest): VaultMethod {
  const q = req.query as Record<string, unknown>;
  // Vault parses list as a Go boolean; node-vault's noCustomHTTPVerbs sends list=1.
  if (req.method === 'GET' && typeof q.list === 'string' && ['true', '1', 't', 'T', 'TRUE', 'True'].includes(q.list)) return 'LIST';
  return req.method as VaultMethod;
}

function queryOf(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
  return out;
}

function statusOf(res: VaultResponse): number {
  return res.status ?? (res.data || res.auth || res.raw ? 200 : 204);
}

export const vaultRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const registry = new EngineRegistry(BUILTIN_ENGINES);
    const index = new MountIndex(runtime.stores.mounts, (err) => app.log.error({ err }, 'reloading the mount index failed'));
    await index.reload();
    const extensions = Object.fromEntries(Object.entries(SYS_EXTENSIONS).map(([name, make]) => [name, make(runtime)]));
    const sys = sysHandler(runtime, registry, extensions, (path) => {
      index.add(path);
      void index.reload();
    });
    const authMethods: Readonly<Record<string, VaultHandler>> = { token: tokenAuthHandler(), approle: appRoleHandler(), cert: certAuthHandler() };
    const resolved = new WeakMap<FastifyRequest, Resolved>();

    app.addConstraintStrategy({
      name: 'vaultPath',
      storage() {
        const handlers = new Map<string, unknown>();
        return { get: (v: string) => handlers.get(v) ?? null, set: (v: string, h: unknown) => void handlers.set(v, h) };
      },
      deriveConstraint: (req: { url?: string }) => (index.routes(req.url ?? '') ? 'vault' : undefined),
      mustMatchWhenDerived: false,
    } as unknown as Parameters<typeof app.addConstraintStrategy>[0]);
    // Vault reads every body as JSON whatever its media type, and an empty body as none: Vault
    // clients rely on both (node-vault posts `secret-id` requests with no body). Prototype keys
    // are refused as by Fastify's own JSON parser. Only the Vault routes of this plugin are affected.
    const json = app.getDefaultJsonParser('error', 'error');
    const lenientJson = (req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.length === 0) done(null, undefined);
      else json(req, text, done);
    };
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, lenientJson);
    app.addContentTypeParser('*', { parseAs: 'string' }, lenientJson);

    function engineHandler(mount: Mount): VaultHandler {
      const engine = registry.factory(mount.type).create(mount);
      return {
        mountType: mount.type,
        needsUnsealed: true,
        plan: (h) => engine.plan({ method: h.method, path: h.path, query: h.query, tenant: h.tenant, mount, stores: h.stores }),
        handle: (r) =>
          engine.handle({
            method: r.method,
            path: r.path,
            query: r.query,
            tenant: r.tenant,
            mount,
            stores: r.stores,
            body: r.body,
            contentType: r.contentType,
            principal: r.principal,
            requestId: r.requestId,
            clock: r.clock,
            sealer: r.sealer,
          }),
      };
    }

    async function resolve(tenant: string, fullPath: string): Promise<{ handler: VaultHandler; path: string }> {
      if (fullPath === 'sys' || fullPath.startsWith('sys/')) return { handler: sys, path: fullPath.slice(4) };
      const auth = /^auth\/([^/]+)\/(.*)$/.exec(fullPath);
      const method = auth ? authMethods[auth[1]!] : undefined;
      if (method) return { handler: method, path: auth![2]! };
      const mount = fullPath.startsWith('auth/') ? undefined : resolveMount(await runtime.stores.mounts.list(tenant), fullPath);
      if (!mount) throw new SecretsError('secrets.not_found', `no handler for route "${fullPath}"`);
      return { handler: engineHandler(mount), path: fullPath.slice(mount.path.length + 1) };
    }

    async function plan(req: FastifyRequest, tenant: string): Promise<{ action: string; resource: EntityRef }[]> {
      const ctx = req.rampart;
      const fullPath = (req.params as Record<string, string>)['*'] ?? '';
      const resource = { type: VAULT_PATH, id: fullPath };
      const { handler, path } = await resolve(tenant, fullPath);
      const head: VaultRequestHead = {
        method: vaultMethod(req),
        path,
        fullPath,
        query: queryOf(req),
        tenant,
        stores: runtime.stores,
        principal: ctx.principal!,
        token: ctx.token,
        sourceIp: req.ip,
      };
      const planned = await handler.plan(head);
      ctx.action = `vault:${planned.capabilities[0] ?? 'read'}`;
      ctx.resource = resource;
      if (handler.needsUnsealed && runtime.secretsSeal.sealed) throw new SecretsError('secrets.sealed', 'Vault is sealed');
      if (handler.needsUnsealed) runtime.secretsSeal.refreshIfStale(runtime.stores.secretsKeyring, (err) => req.log.error({ err }, 'reloading the secrets keyring failed'));
      resolved.set(req, { handler, head, plan: planned });
      return [...planned.capabilities.map((c) => ({ action: `vault:${c}`, resource })), ...(planned.extraChecks ?? [])];
    }

    async function serve(req: FastifyRequest, reply: FastifyReply) {
      const r = resolved.get(req);
      if (!r) throw new SecretsError('secrets.not_found', 'no handler for route');
      const ctx = req.rampart;
      const body = req.body ?? {};
      if (typeof body !== 'object' || Array.isArray(body)) throw new SecretsError('secrets.invalid_request', 'the body must be a JSON object');
      const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
      const request: VaultRequest = {
        ...r.head,
        body: body as Record<string, unknown>,
        contentType,
        requestId: req.id,
        clock: runtime.clock,
        sealer: runtime.secretsSeal.barrier,
        authorize: async (action, resource) => {
          // The audit event names the decision that refused the request, not only the route's.
          ctx.action = action;
          ctx.resource = resource;
          await authorizeRequest(runtime, req, { principal: ctx.principal!, tenant: r.head.tenant, action, resource });
        },
      };
      await r.handler.precheck?.(request);
      let res: VaultResponse;
      if (r.plan.writes) {
        res = await ctx.transact(200, async (stores) => {
          const out = await r.handler.handle({ ...request, stores });
          return { result: out, status: statusOf(out), ...(out.audit ? { details: out.audit } : {}) };
        });
      } else {
        res = await r.handler.handle(request);
        if (res.audit) ctx.auditDetails = res.audit;
      }
      res.afterCommit?.();
      const status = statusOf(res);
      await recordSecretRead(runtime, req, r.handler.mountType, r.head, status);
      if (status === 404) ctx.errorCode = 'secrets.not_found';
      if (status === 204) return reply.code(204).send();
      const envelope = res.raw ?? {
        // sys/ answers repeat `data` at the top level, as Vault's do (node-vault reads them there).
        ...(res.flatten && res.data ? res.data : {}),
        request_id: req.id,
        lease_id: res.leaseId ?? '',
        renewable: res.renewable ?? false,
        lease_duration: res.leaseDuration ?? 0,
        data: res.data ?? null,
        wrap_info: res.wrapInfo ?? null,
        warnings: res.warnings && res.warnings.length > 0 ? res.warnings : null,
        auth: res.auth ?? null,
        mount_type: r.handler.mountType,
      };
      return reply.code(status).header('content-type', 'application/json').send(JSON.stringify(envelope));
    }

    app.route({
      method: [...METHODS],
      url: '/v1/*',
      constraints: { vaultPath: 'vault' },
      config: {
        vault: true,
        authz: { action: 'vault:read', resource: (p) => ({ type: VAULT_PATH, id: p['*'] ?? '' }), plan },
      },
      schema: { hide: true },
      handler: serve,
    });

    await app.register(appRoleLoginRoute(runtime));

    // Public, as in Vault: load balancers and unseal tooling call them without a token. They
    // reveal the seal state only, as GET /v1/health reveals the store's.
    const publicRoute = { config: { public: true, vault: true }, schema: { hide: true } } as const;
    app.get('/v1/sys/seal-status', publicRoute, async (_req, reply) => reply.header('content-type', 'application/json').send(JSON.stringify(sealStatusBody(runtime))));
    app.get('/v1/sys/init', publicRoute, async () => ({ initialized: runtime.secretsSeal.status().initialized }));
    app.get('/v1/sys/health', publicRoute, async (req, reply) => {
      const s = runtime.secretsSeal.status();
      const q = queryOf(req);
      const code = (name: string, fallback: number) => {
        const n = Number(q[name]);
        return Number.isInteger(n) && n >= 200 && n < 600 ? n : fallback;
      };
      const status = s.sealed ? code('sealedcode', 503) : code('activecode', 200);
      return reply
        .code(status)
        .header('content-type', 'application/json')
        .send(
          JSON.stringify({
            initialized: s.initialized,
            sealed: s.sealed,
            standby: false,
            performance_standby: false,
            replication_performance_mode: 'disabled',
            replication_dr_mode: 'disabled',
            server_time_utc: Math.floor(runtime.clock.now().getTime() / 1000),
            version: VERSION,
            cluster_name: 'rampart',
          }),
        );
    });
  };
