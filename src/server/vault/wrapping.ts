import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { SecretsError } from '../../core/errors.js';
import { mintToken, parseToken, secretMatches } from '../../identity/token.js';
import type { Runtime } from '../../runtime.js';
import { unsupportedOperation } from '../../secrets/engine.js';
import { optionalString } from '../../secrets/fields.js';
import { type WrappingContext, type WrappingTokens, lookupWrapping, parseWrapTtl, rewrapResponse, unwrapResponse, wrapResponse } from '../../secrets/wrapping/wrapping.js';
import type { Stores } from '../../store/stores.js';
import { authenticate, bearerToken, presentsClientCertificate } from '../authenticate.js';
import { authorizeRequest } from '../authorize.js';
import type { AuditDetails } from '../request-context.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';
import { vaultNamespaceTenant } from './namespace.js';

/**
 * Vault response wrapping over HTTP (docs/secrets.md, "Response wrapping"):
 *
 * - `X-Vault-Wrap-TTL` on any Vault request whose answer has data or an `auth` block replaces
 *   the answer with `wrap_info`; the answer is sealed in the request's transaction together with
 *   its audit event (routes.ts calls {@link wrapAnswer}).
 * - `sys/wrapping/wrap` and `sys/wrapping/rewrap` are ordinary `sys/` paths ({@link wrappingHandler}).
 * - `sys/wrapping/unwrap` and `sys/wrapping/lookup` are routes of their own ({@link wrappingRoutes}),
 *   because they are the only places a wrapping token (`rpw.…`) is accepted: the request path of
 *   app.ts knows nothing of it and refuses it everywhere else as an unknown token.
 *
 * Audit: the wrap's event carries `wrapping_accessor` and the token's HMAC
 * (`wrapping_token_hmac`, as `POST /v1/audit/hash` would hash it), the unwrap's the same, and a
 * refused unwrap the HMAC of what was presented; never the token or the wrapped response.
 */
const VAULT_PATH = 'Rampart::VaultPath';

export const WRAPPING_TOKENS: WrappingTokens = {
  mint: () => mintToken('rpw'),
  parse: (presented) => parseToken(presented, 'rpw'),
  matches: (secret, hash) => secretMatches(secret, hash),
};

function context(runtime: Runtime, stores: Stores): WrappingContext {
  if (runtime.secretsSeal.sealed) throw new SecretsError('secrets.sealed', 'Vault is sealed');
  return { store: stores.wrapping, sealer: runtime.secretsSeal.barrier, clock: runtime.clock, tokens: WRAPPING_TOKENS };
}

/** The wrap TTL a request asks for (seconds), or undefined; a malformed header is a 400. */
export function requestedWrapTtl(req: FastifyRequest): number | undefined {
  const header = req.headers['x-vault-wrap-ttl'];
  if (Array.isArray(header)) throw new SecretsError('secrets.invalid_request', 'X-Vault-Wrap-TTL must appear once');
  return parseWrapTtl(header);
}

/** What a wrapped answer looks like to the caller: only `wrap_info`, the response left behind. */
function wrapped(info: Record<string, unknown>, audit: AuditDetails): VaultResponse {
  return { status: 200, wrapInfo: info, audit };
}

function wrapAudit(runtime: Runtime, info: { token: string; accessor: string; ttl: number; wrapped_accessor?: string }): AuditDetails {
  return {
    wrapping_accessor: info.accessor,
    wrapping_token_hmac: runtime.auditHasher.hash(info.token),
    wrap_ttl: info.ttl,
    ...(info.wrapped_accessor === undefined ? {} : { wrapped_accessor: info.wrapped_accessor }),
  };
}

/**
 * Wraps an answer when it is one Vault wraps (200 with data, `auth` or a bare body); `body` is
 * the envelope the caller would otherwise have received, stored as is for the unwrap. Returns
 * undefined for answers that are not wrapped (204, errors), as Vault ignores the header there.
 */
export async function wrapAnswer(runtime: Runtime, stores: Stores, head: Pick<VaultRequestHead, 'tenant' | 'fullPath'>, ttl: number, res: VaultResponse, status: number, body: Record<string, unknown>): Promise<VaultResponse | undefined> {
  if (status !== 200 || !(res.data || res.auth || res.raw)) return undefined;
  const accessorOf = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const info = await wrapResponse(context(runtime, stores), {
    tenant: head.tenant,
    response: body,
    ttl,
    creationPath: head.fullPath,
    wrappedAccessor: accessorOf(res.auth?.accessor) ?? accessorOf(res.data?.secret_id_accessor),
  });
  return { ...wrapped({ ...info }, { ...res.audit, ...wrapAudit(runtime, info) }), afterCommit: res.afterCommit };
}

/** `sys/wrapping/wrap` (needs `X-Vault-Wrap-TTL`: its data is wrapped like any answer) and `sys/wrapping/rewrap`. */
export function wrappingHandler(runtime: Runtime): VaultHandler {
  return {
    mountType: 'system',
    needsUnsealed: true,
    plan(req: VaultRequestHead): VaultPlan {
      if (req.path !== 'wrap' && req.path !== 'rewrap') throw new SecretsError('secrets.not_found', `unsupported path sys/wrapping/${req.path}`);
      if (req.method !== 'POST' && req.method !== 'PUT') unsupportedOperation();
      return { capabilities: ['update'], writes: req.path === 'rewrap' };
    },
    async handle(req: VaultRequest): Promise<VaultResponse> {
      if (req.path === 'wrap') {
        if (req.wrapTtl === undefined) throw new SecretsError('secrets.invalid_request', 'endpoint requires response wrapping to be used');
        if (Object.keys(req.body).length === 0) throw new SecretsError('secrets.invalid_request', 'no data provided');
        return { data: req.body };
      }
      const presented = optionalString(req.body, 'token', 256);
      if (!presented) throw new SecretsError('secrets.invalid_request', 'missing "token" value in input');
      const { previous, info } = await rewrapResponse(context(runtime, req.stores), req.tenant, presented);
      return wrapped({ ...info }, { rewrapped_accessor: previous.accessor, ...wrapAudit(runtime, info) });
    },
  };
}

/**
 * Who unwraps, and in which tenant. First party (the wrapping token is the credential): nobody
 * else is authenticated, the tenant is the namespace named, else the token's own. Third party
 * (`{"token": …}` in the body): a caller that presents credentials is authenticated as anywhere
 * (its token spends a use), and the tenant is the one it addresses; crossing into another
 * tenant needs that tenant's policies to permit `vault:update` on the path. Possession of the
 * wrapping token is what authorizes the unwrap itself, as Vault's `default` policy grants
 * `sys/wrapping/unwrap` and `lookup` to every token. Header credentials are read exactly as
 * authentication reads them (`bearerToken`: `Authorization` before `X-Vault-Token`), so the
 * token that decides first or third party is the one that would authenticate the caller.
 */
async function resolveCaller(runtime: Runtime, req: FastifyRequest, path: string): Promise<{ presented: string; tenant: string | undefined }> {
  const ctx = req.rampart;
  ctx.action = 'vault:update';
  ctx.resource = { type: VAULT_PATH, id: path };
  const body = (req.body ?? {}) as Record<string, unknown>;
  if (typeof body !== 'object' || Array.isArray(body)) throw new SecretsError('secrets.invalid_request', 'the body must be a JSON object');
  const named = req.headers['x-rampart-tenant'] ?? vaultNamespaceTenant(req.headers['x-vault-namespace']);
  if (named !== undefined && typeof named !== 'string') throw new SecretsError('secrets.invalid_request', 'name one namespace');
  const inBody = optionalString(body, 'token', 256);
  const inHeader = bearerToken(req);
  const presented = inBody ?? inHeader;
  if (!presented) throw new SecretsError('secrets.invalid_request', 'missing "token" value in input');
  ctx.auditDetails = { wrapping_token_hmac: runtime.auditHasher.hash(presented) };
  const credentials = inBody !== undefined && ((inHeader !== undefined && parseToken(inHeader, 'rpw') === undefined) || presentsClientCertificate(req));
  if (!credentials) {
    if (!named) return { presented, tenant: undefined };
    // An unknown namespace is one more way for the token not to be valid, answered the same.
    if (!(await runtime.stores.tenants.get(named))) throw new SecretsError('secrets.wrapping_token_invalid', 'wrapping token is not valid or does not exist');
    ctx.tenant = named;
    return { presented, tenant: named };
  }
  const caller = await authenticate(req, { tokens: runtime.stores.tokens, tenants: runtime.stores.tenants, certificates: runtime.stores.certificates, clock: runtime.clock });
  ctx.principal = caller.principal;
  ctx.token = caller.token;
  const tenant = named || caller.principal.tenant;
  ctx.tenant = tenant;
  if (tenant !== caller.principal.tenant) await authorizeRequest(runtime, req, { principal: caller.principal, tenant, action: 'vault:update', resource: ctx.resource });
  return { presented, tenant };
}

function sendJson(reply: FastifyReply, body: string): FastifyReply {
  return reply.code(200).header('content-type', 'application/json').send(body);
}

/** `POST`/`PUT /v1/sys/wrapping/unwrap` and `/v1/sys/wrapping/lookup`. */
export const wrappingRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const config = { config: { vault: true, credentialsInBody: true }, schema: { hide: true } } as const;
    app.route({
      method: ['POST', 'PUT'],
      url: '/v1/sys/wrapping/unwrap',
      ...config,
      handler: async (req, reply) => {
        const { presented, tenant } = await resolveCaller(runtime, req, 'sys/wrapping/unwrap');
        const ctx = req.rampart;
        const { response } = await ctx.transact(200, async (stores) => {
          const r = await unwrapResponse(context(runtime, stores), tenant, presented);
          ctx.tenant = r.record.tenant;
          const details: AuditDetails = {
            wrapping_accessor: r.record.accessor,
            wrapping_token_hmac: runtime.auditHasher.hash(presented),
            creation_path: r.record.creationPath,
            ...(r.record.wrappedAccessor === undefined ? {} : { wrapped_accessor: r.record.wrappedAccessor }),
          };
          return { result: r, details };
        });
        return sendJson(reply, JSON.stringify(response));
      },
    });
    app.route({
      method: ['POST', 'PUT'],
      url: '/v1/sys/wrapping/lookup',
      ...config,
      handler: async (req, reply) => {
        const { presented, tenant } = await resolveCaller(runtime, req, 'sys/wrapping/lookup');
        const { record, data } = await lookupWrapping({ store: runtime.stores.wrapping, sealer: runtime.secretsSeal.barrier, clock: runtime.clock, tokens: WRAPPING_TOKENS }, tenant, presented);
        req.rampart.tenant = record.tenant;
        req.rampart.auditDetails = { ...req.rampart.auditDetails, wrapping_accessor: record.accessor };
        const envelope = { request_id: req.id, lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings: null, auth: null };
        return sendJson(reply, JSON.stringify(envelope));
      },
    });
  };
