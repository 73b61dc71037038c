import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { TokenError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import { DEFAULT_TOKEN_TTL_MS, createToken, lookupToken, revokeToken, tokenInfo } from '../../identity/tokens.js';
import { roleUid } from '../../authz/entities.js';
import type { Runtime } from '../../runtime.js';
import { authorizeRequest } from '../authorize.js';
import { errorResponses } from './schemas.js';

const TokenInfo = Type.Object({
  accessor: Type.String(),
  tenant: Type.String(),
  policies: Type.Array(Type.String()),
  display_name: Type.String(),
  created_at: Type.String(),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  revoked: Type.Boolean(),
});
const CreatedToken = Type.Composite([Type.Object({ token: Type.String({ description: 'the secret; shown once' }) }), TokenInfo]);
const CreateTokenBody = Type.Object(
  {
    ttl: Type.Optional(Type.String({ maxLength: 32, description: 'e.g. "1h", "30m", "3600" (default 24h, at most 768h)' })),
    policies: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), { maxItems: 64 })),
    display_name: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);
const AccessorParams = Type.Object({ accessor: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' }) });

const tokensCollection = (_p: Record<string, string>, tenant: string) => ({ type: 'Rampart::Collection', id: `${tenant}/tokens` });
const tokenResource = (p: Record<string, string>) => ({ type: 'Rampart::Token', id: p.accessor ?? '' });

export const tokenRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    app.post<{ Body: Static<typeof CreateTokenBody> }>(
      '/v1/tokens',
      {
        config: { authz: { action: 'token:create', resource: tokensCollection } },
        schema: { summary: 'Create a token', body: CreateTokenBody, response: { 201: CreatedToken, ...errorResponses } },
      },
      async (req, reply) => {
        const ctx = req.rampart;
        const principal = ctx.principal!;
        const tenant = ctx.tenant!;
        const ttlMs = req.body.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : parseDuration(req.body.ttl);
        if (ttlMs === undefined) throw new TokenError('token.ttl_invalid', 'ttl must be a duration such as "90s", "10m", "1h" or a number of seconds');
        const policies = req.body.policies ?? [];
        // No privilege escalation: granting a role the creator does not hold in this tenant is
        // its own decision (`token:grant-role` on that role), not implied by `token:create`.
        for (const role of policies) {
          if (principal.tenant === tenant && principal.roles.includes(role)) continue;
          await authorizeRequest(runtime, req, { principal, tenant, action: 'token:grant-role', resource: roleUid(role) });
        }
        const created = await ctx.transact(201, async (s) => {
          const r = await createToken(s.tokens, runtime.clock, {
            tenant,
            policies,
            displayName: req.body.display_name ?? '',
            ttlMs,
            createdBy: `${principal.type}::${principal.id}`,
            // A token bound to CIDR blocks makes tokens bound to the same ones: this API has no
            // parent or role to decide otherwise, and must not be a way out of the binding.
            boundCidrs: ctx.token?.boundCidrs,
            creator: ctx.token,
          });
          // A display name often names a person: it is recorded only sealed, erasable per subject.
          const displayName = r.record.displayName;
          return {
            result: r,
            details: { created_accessor: r.record.accessor, policies: r.record.policies },
            ...(displayName ? { subject: { id: displayName, data: { display_name: displayName } } } : {}),
          };
        });
        return reply.code(201).send({ token: created.token, ...tokenInfo(created.record) });
      },
    );

    app.get(
      '/v1/tokens/self',
      {
        config: { authz: { action: 'token:lookup-self', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/tokens/self` }) } },
        schema: { summary: 'Look up the calling token', response: { 200: TokenInfo, ...errorResponses } },
      },
      async (req) => {
        const token = req.rampart.token;
        if (!token) throw new TokenError('token.not_found', 'the caller authenticated with a client certificate, not a token');
        return tokenInfo(token);
      },
    );

    app.get<{ Params: Static<typeof AccessorParams> }>(
      '/v1/tokens/:accessor',
      {
        config: { authz: { action: 'token:lookup', resource: tokenResource } },
        schema: { summary: 'Look up a token by accessor', params: AccessorParams, response: { 200: TokenInfo, ...errorResponses } },
      },
      async (req) => tokenInfo(await lookupToken(runtime.stores.tokens, req.rampart.tenant!, req.params.accessor)),
    );

    app.delete<{ Params: Static<typeof AccessorParams> }>(
      '/v1/tokens/:accessor',
      {
        config: { authz: { action: 'token:revoke', resource: tokenResource } },
        schema: { summary: 'Revoke a token', params: AccessorParams, response: { 204: Type.Null(), ...errorResponses } },
      },
      async (req, reply) => {
        await req.rampart.transact(204, async (s) => {
          await revokeToken(s.tokens, runtime.clock, req.rampart.tenant!, req.params.accessor);
          return { result: undefined, details: { revoked_accessor: req.params.accessor } };
        });
        return reply.code(204).send();
      },
    );
  };
