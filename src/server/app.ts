import { randomUUID } from 'node:crypto';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { Server as TlsServer } from 'node:tls';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { AUDIT_SCHEMA_VERSION, type AuditEvent, type AuditOutcome } from '../audit/event.js';
import type { SealedSubject } from '../audit/subjects.js';
import { AuthzError, RequestError, ServerError, isRampartError } from '../core/errors.js';
import { DEFAULT_TENANT } from '../core/ids.js';
import { VERSION } from '../core/version.js';
import { requireTenant } from '../identity/tenants.js';
import { chainPem } from '../pki/ca.js';
import type { Runtime } from '../runtime.js';
import { authenticate } from './authenticate.js';
import { LazyRequestLogger } from './request-logger.js';
import { CachedTokenStore, TokenCache } from './token-cache.js';
import { authorizeRequest } from './authorize.js';
import { PROBLEM_CONTENT_TYPE, problem, problemFor } from './problem.js';
import type { AuditDetails, RequestContext, TransactResult } from './request-context.js';
import { auditRoutes } from './routes/audit.js';
import { metaRoutes } from './routes/meta.js';
import { pkiRoutes } from './routes/pki.js';
import { pkiAgentRoutes } from './routes/pki-agent.js';
import { pkiEventRoutes } from './routes/pki-events.js';
import { secretEventRoutes } from './routes/secrets-events.js';
import { pkiRegistrationRoutes } from './routes/pki-registrations.js';
import { authzDecisionRoutes } from './routes/authz-decisions.js';
import { authzPolicyRoutes } from './routes/authz-policies.js';
import { tenantRoutes } from './routes/tenants.js';
import { tlogRoutes } from './routes/tlog.js';
import { tokenRoutes } from './routes/tokens.js';
import { sendVaultError, speaksVault, vaultErrorPayload, vaultNoRoute, vaultPathOf } from './vault/errors.js';
import { vaultNamespaceTenant } from './vault/namespace.js';
import { clientErrorHandler } from './vault/list-verb.js';
import { vaultRoutes } from './vault/routes.js';

export interface BuildAppOptions {
  /** HTTPS options for a listening server; omitted for `inject()`-only apps in tests. */
  readonly https?: HttpsServerOptions;
}

/**
 * Builds the Fastify app (it does not listen). The request path of ARCHITECTURE.md lives in the
 * hooks registered here, so no route can skip authentication, authorization or audit:
 * onRequest authenticates, resolves the tenant and authorizes; the body is then parsed and
 * validated; onSend makes the audit event durable before a single byte of the answer leaves.
 */
export async function buildApp(runtime: Runtime, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: runtime.logger,
    childLoggerFactory: LazyRequestLogger.factory,
    bodyLimit: runtime.config.bodyLimit,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Refused in onRequest instead, so that the 503 is problem+json like every other error.
    return503OnClosing: false,
    // Vault's LIST method, which Node's parser refuses, and the parser's other refusals (vault/list-verb.ts).
    clientErrorHandler: clientErrorHandler(runtime),
    ...(options.https ? { https: options.https } : {}),
    ajv: {
      customOptions: {
        // Unknown fields and wrong types are errors, not something to strip or coerce.
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        allErrors: true,
      },
    },
  } as FastifyServerOptions);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Rampart control plane', version: VERSION },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          vaultToken: { type: 'apiKey', in: 'header', name: 'X-Vault-Token' },
        },
      },
      security: [{ bearer: [] }, { vaultToken: [] }],
    },
  });

  app.decorateRequest('rampart', null as unknown as RequestContext);
  // Only JSON bodies are accepted; Fastify's default text/plain parser would turn a wrong media
  // type into a validation error instead of a 415.
  app.removeContentTypeParser('text/plain');

  // Token rows are read through a short-lived cache that every committed change of this process
  // clears (src/server/token-cache.ts says what revocation sees, here and on other replicas).
  const tokenCache = new TokenCache(runtime.stores.tokens);
  const authenticationDeps = {
    tokens: new CachedTokenStore(runtime.stores.tokens, tokenCache),
    tenants: runtime.stores.tenants,
    certificates: runtime.stores.certificates,
    clock: runtime.clock,
  };

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A request already past onRequest when closing began is answered with `Connection: close`:
  // server.close() swept the idle connections before this one became idle, and would otherwise
  // wait for the client's keep-alive to lapse (72 s by Fastify's default) before shutdown goes on.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  app.addHook('onRequest', async (req, reply) => {
    req.rampart = new HookContext(req, runtime, tokenCache);
    reply.header('x-request-id', req.id);
    if (closing) {
      reply.header('connection', 'close').header('retry-after', '1');
      throw new ServerError('server.shutting_down', 'the server is shutting down; retry against another replica or after restart');
    }
    const config = req.routeOptions.config;
    if (config.public) return;
    if (config.credentialsInBody) return; // the handler authenticates (routes/pki-agent.ts, vault/auth-approle.ts)
    const ctx = req.rampart;
    const authenticated = await authenticate(req, authenticationDeps);
    ctx.principal = authenticated.principal;
    ctx.token = authenticated.token;
    const named = req.headers['x-rampart-tenant'] ?? vaultNamespaceTenant(req.headers['x-vault-namespace']);
    if (named !== undefined && typeof named !== 'string') throw new RequestError('request.invalid', 'X-Rampart-Tenant must appear once');
    ctx.tenant = named === undefined || named === '' ? ctx.principal.tenant : await addressedTenant(runtime, ctx.principal.tenant, named);
    if (!config.authz) return; // the not-found handler: authenticated, nothing to authorize
    ctx.action = config.authz.action;
    ctx.resource = config.authz.resource(req.params as Record<string, string>, ctx.tenant);
    if (config.authz.plan) {
      for (const check of await config.authz.plan(req, ctx.tenant)) {
        ctx.action = check.action;
        ctx.resource = check.resource;
        await authorizeRequest(runtime, req, { principal: ctx.principal, tenant: ctx.tenant, action: ctx.action, resource: ctx.resource });
      }
      return;
    }
    await authorizeRequest(runtime, req, { principal: ctx.principal, tenant: ctx.tenant, action: ctx.action, resource: ctx.resource });
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const ctx = req.rampart;
    if (!ctx || req.routeOptions.config.public || ctx.audited) return payload;
    try {
      await runtime.audit.append(eventFor(req, runtime, reply.statusCode, outcomeOf(reply.statusCode), ctx.auditDetails));
      ctx.audited = true;
      return payload;
    } catch (err) {
      // Fail closed: the answer is replaced, so nothing computed without an audit record leaves.
      const code = isRampartError(err) && err.code === 'audit.pushback' ? 'audit.pushback' : 'audit.write_failed';
      req.log.error({ err }, 'audit append failed; refusing the request');
      const detail = 'the audit log could not record this request; nothing was returned';
      reply.code(503).header('retry-after', '1');
      // Vault clients parse `{"errors":[…]}` on Vault paths (vault/errors.ts), problem+json elsewhere.
      const vault = speaksVault(req);
      reply.header('content-type', vault ? 'application/json' : PROBLEM_CONTENT_TYPE);
      return vault ? vaultErrorPayload([detail]) : JSON.stringify(problem(code, detail, req.id));
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { route, method: req.method, status: String(reply.statusCode) };
    runtime.metrics.requests.inc(labels);
    const started = req.rampart?.startedAt;
    if (started !== undefined) runtime.metrics.latency.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
  });

  app.setErrorHandler(async (err, req, reply) => {
    if (speaksVault(req)) return sendVaultError(err, req, reply);
    const body = problemFor(err, req.id);
    if (req.rampart) req.rampart.errorCode = body.code;
    if (body.status >= 500) req.log.error({ err }, 'request failed');
    if (body.code === 'audit.pushback' || body.code === 'store.pushback') reply.header('retry-after', '1');
    return reply.code(body.status).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
  });

  app.setNotFoundHandler(async (req, reply) => {
    if (speaksVault(req)) throw vaultNoRoute(vaultPathOf(req));
    const body = problem('request.not_found', `no route ${req.method} ${req.url.split('?')[0]}`, req.id);
    req.rampart.errorCode = body.code;
    return reply.code(404).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
  });

  if (options.https) followTrustBundle(app, runtime, options.https);

  await app.register(metaRoutes(runtime));
  await app.register(tenantRoutes(runtime));
  await app.register(tokenRoutes(runtime));
  await app.register(auditRoutes(runtime));
  await app.register(tlogRoutes(runtime));
  await app.register(pkiRoutes(runtime));
  await app.register(pkiRegistrationRoutes(runtime));
  await app.register(pkiAgentRoutes(runtime));
  await app.register(pkiEventRoutes(runtime));
  await app.register(secretEventRoutes(runtime, authenticationDeps.tokens));
  await app.register(authzDecisionRoutes(runtime));
  await app.register(authzPolicyRoutes(runtime));
  await app.register(vaultRoutes(runtime));
  return app;
}

/**
 * Root rotation adds a root: a client whose SVID chains to it must be able to connect without a
 * restart, so the listener's client-CA list follows the trust bundle. Its own certificate follows
 * `runtime.tls`, which renews itself (src/server/server-certificate.ts); the `key` and `cert` given
 * to buildApp are the runtime's at start. `setSecureContext` applies to new handshakes only;
 * established connections keep theirs.
 */
function followTrustBundle(app: FastifyInstance, runtime: Runtime, https: HttpsServerOptions): void {
  const reload = () => {
    const { minVersion, maxVersion, ciphers } = https;
    try {
      (app.server as unknown as TlsServer).setSecureContext({ key: runtime.tls.keyPem, cert: runtime.tls.certPem, minVersion, maxVersion, ciphers, ca: chainPem(...runtime.ca.roots) });
    } catch (err) {
      // The old context stays in force: clients under the new root fail, and the old certificate is served, until a restart.
      app.log.error({ err }, 'could not load the new trust bundle or server certificate into the TLS listener');
    }
  };
  const unsubscribe = [runtime.pkiEvents.watchBundle(reload), runtime.tls.onRenew(reload)];
  app.addHook('onClose', async () => unsubscribe.forEach((u) => u()));
}

/**
 * Resolves `X-Rampart-Tenant`. Only principals of the operator tenant, who may enter every
 * tenant, learn that a name is unknown (404); anyone else gets the same 403 as for a tenant that
 * exists but is not theirs, so tenant names cannot be probed.
 */
async function addressedTenant(runtime: Runtime, home: string, named: string): Promise<string> {
  try {
    return (await requireTenant(runtime.stores.tenants, named)).name;
  } catch (err) {
    if (home !== DEFAULT_TENANT && isRampartError(err) && err.code === 'tenant.unknown') throw new AuthzError('authz.denied', 'access denied');
    throw err;
  }
}

/** The request's context, one per request; a class so that no closure is allocated for it. */
class HookContext implements RequestContext {
  readonly requestId: string;
  readonly startedAt = process.hrtime.bigint();
  principal: RequestContext['principal'] = undefined;
  token: RequestContext['token'] = undefined;
  decision: RequestContext['decision'] = undefined;
  tenant: string | undefined = undefined;
  action: string | undefined = undefined;
  resource: RequestContext['resource'] = undefined;
  errorCode: string | undefined = undefined;
  auditDetails: AuditDetails | undefined = undefined;
  audited = false;

  constructor(
    private readonly req: FastifyRequest,
    private readonly runtime: Runtime,
    private readonly tokenCache: TokenCache,
  ) {
    this.requestId = req.id;
  }

  async transact<T>(status: number, work: Parameters<RequestContext['transact']>[1]): Promise<T> {
    const { req, runtime } = this;
    const result = await runtime.transact(async (stores) => {
      const done = (await work(stores)) as TransactResult<T>;
      const tenant = this.tenant ?? this.principal?.tenant ?? 'default';
      const subject = done.subject
        ? await runtime.subjects.seal(stores.subjectKeys, tenant, done.subject.id, done.subject.data, runtime.clock.now().toISOString())
        : undefined;
      await stores.audit.insert([runtime.audit.rowFor(eventFor(req, runtime, done.status ?? status, 'success', done.details, subject))]);
      return done.result;
    });
    // Whatever the change was (a revoked or renewed token among them), authentication reads the
    // store anew from now on; this runs before the answer is sent.
    this.tokenCache.invalidate();
    runtime.audit.recordCommitted(1);
    this.audited = true;
    return result;
  }
}

/** Client errors are `invalid` (the request was refused as it stood); server errors `failed`. */
function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'success';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'denied';
  return status >= 500 ? 'failed' : 'invalid';
}

function eventFor(
  req: FastifyRequest,
  runtime: Runtime,
  status: number,
  outcome: AuditOutcome,
  details?: AuditDetails,
  subject?: SealedSubject,
): AuditEvent {
  const ctx = req.rampart;
  const p = ctx.principal;
  return {
    schema_version: AUDIT_SCHEMA_VERSION,
    time: runtime.clock.now().toISOString(),
    tenant: ctx.tenant ?? p?.tenant ?? 'default',
    request_id: ctx.requestId,
    source_ip: req.ip,
    principal: p ? { type: p.type, id: p.id, tenant: p.tenant, auth_method: p.authMethod } : null,
    action: ctx.action ?? null,
    resource: ctx.resource ?? null,
    outcome,
    authorization: ctx.decision
      ? {
          decision: ctx.decision.decision.decision,
          policies: ctx.decision.decision.reasons,
          policy_version: ctx.decision.decision.policyVersion ?? null,
        }
      : null,
    error_code: outcome === 'success' ? null : (ctx.errorCode ?? null),
    http: { method: req.method, route: req.routeOptions.url ?? req.url.split('?')[0] ?? '', status },
    // Not spread in: V8 spent just under 1 µs per request on `...(details ? { details } : {})`.
    // serializeEvent leaves out an undefined field, so the payload is the same.
    details: details || undefined,
    subject: subject || undefined,
  };
}

