import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { PkiError } from '../../core/errors.js';
import { requireTenant } from '../../identity/tenants.js';
import { MAX_SELECTORS, newRegistrationEntry, registrationView } from '../../pki/registration.js';
import type { Runtime } from '../../runtime.js';
import { errorResponses, page, PageQuery, pageOf, problemResponse } from './schemas.js';

export const Registration = Type.Object({
  id: Type.String(),
  spiffe_id: Type.String(),
  parent: Type.String({ description: "an agent's SPIFFE ID, or a node selector" }),
  selectors: Type.Array(Type.String()),
  dns_names: Type.Array(Type.String()),
  ttl_seconds: Type.Union([Type.Number(), Type.Null()], { description: 'SVID lifetime; null for the server default (1h)' }),
  created_at: Type.String(),
});
const CreateBody = Type.Object(
  {
    spiffe_id: Type.String({ maxLength: 2048 }),
    parent: Type.String({ maxLength: 2048, description: "the agent's SPIFFE ID, or a node selector such as k8s:cluster:prod" }),
    selectors: Type.Array(Type.String({ maxLength: 300 }), { minItems: 1, maxItems: MAX_SELECTORS, description: '<type>:<value>, e.g. k8s:sa:pay/api, unix:uid:1000' }),
    dns_names: Type.Optional(Type.Array(Type.String({ maxLength: 253 }), { maxItems: 32 })),
    ttl: Type.Optional(Type.String({ maxLength: 32, description: 'SVID lifetime, at least 1m, at most the server maximum' })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ pattern: '^reg_[A-Za-z0-9_-]{22}$' }) }, { additionalProperties: false });

const registrations = (_p: Record<string, string>, tenant: string) => ({ type: 'Rampart::Collection', id: `${tenant}/pki/registrations` });
const registration = (p: Record<string, string>) => ({ type: 'Rampart::Registration', id: p.id ?? '' });

/** Registration entries (docs/pki.md, "Registration entries"): create, list, read, delete. */
export const pkiRegistrationRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    app.post<{ Body: Static<typeof CreateBody> }>(
      '/v1/pki/registrations',
      {
        config: { authz: { action: 'pki:registration-create', resource: registrations } },
        schema: { summary: 'Register a workload: selectors and a parent agent mapped to a SPIFFE ID', body: CreateBody, response: { 201: Registration, 409: problemResponse('an identical entry exists'), ...errorResponses } },
      },
      async (req, reply) => {
        const ctx = req.rampart;
        const { trustDomain } = await requireTenant(runtime.stores.tenants, ctx.tenant!);
        const entry = newRegistrationEntry({
          tenant: ctx.tenant!,
          trustDomain,
          spiffeId: req.body.spiffe_id,
          parent: req.body.parent,
          selectors: req.body.selectors,
          ...(req.body.dns_names === undefined ? {} : { dnsNames: req.body.dns_names }),
          ...(req.body.ttl === undefined ? {} : { ttl: req.body.ttl }),
          maxTtlMs: runtime.config.pkiMaxTtlMs,
          createdBy: `${ctx.principal!.type}::${ctx.principal!.id}`,
          now: runtime.clock.now(),
        });
        await ctx.transact(201, async (s) => {
          if (!(await s.registrations.insert(entry))) {
            throw new PkiError('pki.registration_exists', 'this tenant already has an entry with that SPIFFE ID, parent and selectors');
          }
          return { result: undefined, details: { registration_id: entry.id, spiffe_id: entry.spiffeId, parent: entry.parent, selectors: entry.selectors } };
        });
        return reply.code(201).send(registrationView(entry));
      },
    );

    app.get<{ Querystring: Static<typeof PageQuery> }>(
      '/v1/pki/registrations',
      {
        config: { authz: { action: 'pki:registration-list', resource: registrations } },
        schema: { summary: "The tenant's registration entries, by id", querystring: PageQuery, response: { 200: page(Registration), ...errorResponses } },
      },
      async (req) => {
        const { limit, cursor } = pageOf(req.query);
        const rows = await runtime.stores.registrations.list(req.rampart.tenant!, limit + 1, cursor);
        const items = rows.slice(0, limit);
        return { items: items.map(registrationView), next_cursor: rows.length > limit ? items[items.length - 1]!.id : null };
      },
    );

    app.get<{ Params: Static<typeof IdParams> }>(
      '/v1/pki/registrations/:id',
      {
        config: { authz: { action: 'pki:registration-read', resource: registration } },
        schema: { summary: 'One registration entry', params: IdParams, response: { 200: Registration, ...errorResponses } },
      },
      async (req) => {
        const entry = await runtime.stores.registrations.get(req.rampart.tenant!, req.params.id);
        if (!entry) throw new PkiError('pki.registration_not_found', `this tenant has no registration entry ${req.params.id}`);
        return registrationView(entry);
      },
    );

    app.delete<{ Params: Static<typeof IdParams> }>(
      '/v1/pki/registrations/:id',
      {
        config: { authz: { action: 'pki:registration-delete', resource: registration } },
        schema: { summary: 'Delete a registration entry; SVIDs already issued stay valid until they expire or are revoked', params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
      },
      async (req, reply) => {
        await req.rampart.transact(204, async (s) => {
          if (!(await s.registrations.delete(req.rampart.tenant!, req.params.id))) {
            throw new PkiError('pki.registration_not_found', `this tenant has no registration entry ${req.params.id}`);
          }
          return { result: undefined, details: { registration_id: req.params.id } };
        });
        return reply.code(204).send();
      },
    );
  };
