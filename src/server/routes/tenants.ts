import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TenantRecord } from '../../identity/store.js';
import { createTenant } from '../../identity/tenants.js';
import { seedTenantPolicies } from '../../runtime.js';
import type { Runtime } from '../../runtime.js';
import { PageQuery, errorResponses, page, pageOf, problemResponse } from './schemas.js';

const Tenant = Type.Object({ name: Type.String(), trust_domain: Type.String(), created_at: Type.String() });
const CreateTenantBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) }, { additionalProperties: false });

const view = (t: TenantRecord) => ({ name: t.name, trust_domain: t.trustDomain, created_at: t.createdAt });
const tenantsCollection = (_p: Record<string, string>, tenant: string) => ({ type: 'Rampart::Collection', id: `${tenant}/tenants` });

/**
 * Tenants. Creating one is an operator action: it is authorized in the caller's tenant (by
 * default only `default`'s admins may) and seeds the new tenant's `rampart` policy store.
 */
export const tenantRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    app.post<{ Body: Static<typeof CreateTenantBody> }>(
      '/v1/tenants',
      {
        config: { authz: { action: 'tenant:create', resource: tenantsCollection } },
        schema: { summary: 'Create a tenant', body: CreateTenantBody, response: { 201: Tenant, 409: problemResponse('the tenant exists'), ...errorResponses } },
      },
      async (req, reply) => {
        const principal = req.rampart.principal;
        const created = await req.rampart.transact(201, async (s) => {
          const tenant = await createTenant(s.tenants, runtime.clock, req.body.name);
          await seedTenantPolicies(s.policies, runtime.clock, tenant.name, principal ? `${principal.type}::${principal.id}` : 'system');
          return { result: tenant, details: { created_tenant: tenant.name } };
        });
        return reply.code(201).send(view(created));
      },
    );

    app.get<{ Querystring: Static<typeof PageQuery> }>(
      '/v1/tenants',
      {
        config: { authz: { action: 'tenant:list', resource: tenantsCollection } },
        schema: { summary: 'List tenants', querystring: PageQuery, response: { 200: page(Tenant), ...errorResponses } },
      },
      async (req) => {
        const { limit, cursor } = pageOf(req.query);
        const result = await runtime.stores.tenants.list(cursor, limit);
        return { items: result.items.map(view), next_cursor: result.nextCursor ?? null };
      },
    );
  };
