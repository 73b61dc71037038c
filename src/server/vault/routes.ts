import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { EntityRef } from '../../audit/event.js';
import { SecretsError } from '../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import { EngineRegistry, type EngineRequest, type Mount, type VaultMethod } from '../../secrets/engine.js';
import { BUILTIN_ENGINES } from '../../secrets/engines.js';
import { resolveMount } from '../../secrets/mounts.js';
import { authorizeRequest } from '../authorize.js';
import { recordSecretRead } from './anomaly-events.js';
import { appRoleHandler, appRoleLoginRoute } from './auth-approle.js';
import { certAuthHandler } from './auth-cert.js';
import { tokenAuthHandler } from './auth-token.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';
import { isVaultList, vaultNoRoute } from './errors.js';
import { MountIndex } from './mount-index.js';
import { SYS_EXTENSIONS } from './sys-extensions.js';
import { healthAnswer, sealStatusBody, sysHandler } from './sys.js';
import type { Stores } from '../../store/stores.js';
import { requestedWrapTtl, wrapAnswer, wrappingRoutes } from './wrapping.js';

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
 * A list arrives as Vault's own Go client sends it, `GET …?list=true`; the `LIST` method, which
 * Node's HTTP parser refuses, is turned into that request before routing (list-verb.ts).
 */
const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH'] as const;
const VAULT_PATH = 'Rampart::VaultPath';

interface Resolved {
  readonly handler: VaultHandler;
  readonly head: VaultRequestHead;
  readonly plan: VaultPlan;
}

function vaultMethod(req: FastifyRequest): VaultMethod {
  return isVaultList(req) ? 'LIST' : (req.method as VaultMethod);
}

/**
 * A list names a folder: Vault appends the "/" to every list path before routing and the ACL
 * check (vault http/logical.go, buildLogicalRequestNoAuth), so `LIST secret/metadata/app` is
 * `secret/metadata/app/` to the engine and to the ACL alike.
 */
function listPath(method: VaultMethod, path: string): string {
  return method === 'LIST' && !path.endsWith('/') ? `${path}/` : path;
}

function queryOf(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
  return out;
}

function statusOf(res: VaultResponse): number {
  return res.status ?? (res.data || res.auth || res.raw ? 200 : 204);
}

/** The body of a Vault answer: Vault's envelope, or the bare body of the few sys/ paths that answer one. */
function envelopeOf(requestId: string, mountType: string, res: VaultResponse): Record<string, unknown> {
  return (
    res.raw ?? {
      // sys/ answers repeat `data` at the top level, as Vault's do (node-vault reads them there).
      ...(res.flatten && res.data ? res.data : {}),
      request_id: requestId,
      lease_id: res.leaseId ?? '',
      renewable: res.renewable ?? false,
      lease_duration: res.leaseDuration ?? 0,
      data: res.data ?? null,
      wrap_info: res.wrapInfo ?? null,
      warnings: res.warnings && res.warnings.length > 0 ? res.warnings : null,
      auth: res.auth ?? null,
      mount_type: mountType,
    }
  );
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
      index.invalidate();
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

    // One handler per mount record: the cached mount table hands out the same records until it
    // is reloaded, so engines are not rebuilt per request.
    const engineHandlers = new WeakMap<Mount, VaultHandler>();
    function engineHandlerOf(mount: Mount): VaultHandler {
      let handler = engineHandlers.get(mount);
      if (!handler) {
        handler = engineHandler(mount);
        engineHandlers.set(mount, handler);
      }
      return handler;
    }

    function engineHandler(mount: Mount): VaultHandler {
      const engine = registry.factory(mount.type).create(mount);
      return {
        mountType: mount.type,
        needsUnsealed: true,
        plan: (h) => engine.plan({ method: h.method, path: h.path, query: h.query, tenant: h.tenant, mount, stores: h.stores }),
        ...(engine.precheck ? { precheck: (r: VaultRequest) => engine.precheck!(engineRequest(r, mount), runtime.transact) } : {}),
        handle: (r) => engine.handle(engineRequest(r, mount)),
      };
    }

    function engineRequest(r: VaultRequest, mount: Mount): EngineRequest {
      return {
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
      };
    }

    async function resolve(tenant: string, fullPath: string): Promise<{ handler: VaultHandler; path: string }> {
      if (fullPath === 'sys' || fullPath.startsWith('sys/')) return { handler: sys, path: fullPath.slice(4) };
      if (fullPath.startsWith('auth/')) {
        const auth = /^auth\/([^/]+)\/(.*)$/.exec(fullPath);
        const method = auth ? authMethods[auth[1]!] : undefined;
        if (method) return { handler: method, path: auth![2]! };
        throw vaultNoRoute(fullPath);
      }
      const mount = resolveMount(await index.mounts(tenant), fullPath);
      if (!mount) throw vaultNoRoute(fullPath);
      return { handler: engineHandlerOf(mount), path: fullPath.slice(mount.path.length + 1) };
    }

    async function plan(req: FastifyRequest, tenant: string): Promise<{ action: string; resource: EntityRef }[]> {
      const ctx = req.rampart;
      const method = vaultMethod(req);
      const fullPath = listPath(method, (req.params as Record<string, string>)['*'] ?? '');
      const resource = { type: VAULT_PATH, id: fullPath };
      const { handler, path } = await resolve(tenant, fullPath);
      const head: VaultRequestHead = {
        method,
        path,
        fullPath,
        query: queryOf(req),
        tenant,
        stores: runtime.stores,
        principal: ctx.principal!,
        token: ctx.token,
        sourceIp: req.ip,
        wrapTtl: requestedWrapTtl(req),
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
      const h = r.head;
      // Field by field, not `...r.head`: V8 took about 3 µs per request over spreading the head
      // and adding the fields below, 5 % of a KV read's CPU (bench/README.md, kv-read).
      const request: VaultRequest = {
        method: h.method,
        path: h.path,
        fullPath: h.fullPath,
        query: h.query,
        tenant: h.tenant,
        stores: h.stores,
        principal: h.principal,
        token: h.token,
        sourceIp: h.sourceIp,
        wrapTtl: h.wrapTtl,
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
      const wrapTtl = r.head.wrapTtl;
      const wrapped = async (stores: Stores, handled: VaultResponse) => {
        const out = wrapTtl === undefined ? handled : ((await wrapAnswer(runtime, stores, r.head, wrapTtl, handled, statusOf(handled), envelopeOf(req.id, r.handler.mountType, handled))) ?? handled);
        return { result: out, status: statusOf(out), ...(out.audit ? { details: out.audit } : {}) };
      };
      if (r.plan.writes) {
        res = await ctx.transact(200, async (stores) => wrapped(stores, await r.handler.handle({ ...request, stores })));
        // sys/ writes are how mounts change (mount, unmount, tune): the next request reads the table anew.
        if (r.handler === sys) index.invalidate();
      } else {
        const handled = await r.handler.handle(request);
        // A wrapped answer is stored, so it commits with its audit event (wrapping.ts). The read
        // runs before that transaction, not in it: read handlers use the runtime's shared stores
        // (capabilities-self re-reads the policies, sys/unseal the keyring), which on SQLite wait
        // for the connection a group-commit batch holds while the batch waits for them.
        if (wrapTtl === undefined) {
          res = handled;
          if (res.audit) ctx.auditDetails = res.audit;
        } else {
          res = await ctx.transact(200, (stores) => wrapped(stores, handled));
        }
      }
      res.afterCommit?.();
      const status = statusOf(res);
      await recordSecretRead(runtime, req, r.handler.mountType, r.head, status);
      if (status === 404) ctx.errorCode = 'secrets.not_found';
      // Sent here: Fastify sends an `undefined` result only while the client is still connected,
      // and the audit event of a read answered 204 (sys/seal) is written by the onSend hook.
      if (status === 204) return reply.code(204).send();
      // The body is returned for Fastify to send (a defined result is always sent), not sent here
      // with the reply returned: an async handler resolving to the reply adopts it as a thenable,
      // and Reply#then waits for the response to finish with a stream listener, about 1 % of a KV
      // read.
      reply.code(status).header('content-type', 'application/json');
      return JSON.stringify(envelopeOf(req.id, r.handler.mountType, res));
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
    await app.register(wrappingRoutes(runtime));

    // Public, as in Vault: load balancers and unseal tooling call them without a token. They
    // reveal the seal state only, as GET /v1/health reveals the store's.
    const publicRoute = { config: { public: true, vault: true }, schema: { hide: true } } as const;
    app.get('/v1/sys/seal-status', publicRoute, async (_req, reply) => reply.header('content-type', 'application/json').send(JSON.stringify(sealStatusBody(runtime))));
    app.get('/v1/sys/init', publicRoute, async () => ({ initialized: runtime.secretsSeal.status().initialized }));
    app.get('/v1/sys/health', publicRoute, async (req, reply) => {
      const { status, body } = healthAnswer(runtime, queryOf(req));
      return reply.code(status).header('content-type', 'application/json').send(JSON.stringify(body));
    });
  };
