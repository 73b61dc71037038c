import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { RequestError } from '../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import { PageQuery, errorResponses, pageOf } from './schemas.js';

const EventPage = Type.Object({
  items: Type.Array(Type.Object({ leaf_index: Type.Union([Type.Integer(), Type.Null()]), event: Type.Unknown() })),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

/** Reading the addressed tenant's audit events, oldest first, each with its Merkle leaf index. */
export const auditRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    app.get<{ Querystring: Static<typeof PageQuery> }>(
      '/v1/audit/events',
      {
        config: { authz: { action: 'audit:read', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/audit` }) } },
        schema: { summary: 'List audit events', querystring: PageQuery, response: { 200: EventPage, ...errorResponses } },
      },
      async (req) => {
        const { limit, cursor } = pageOf(req.query);
        const after = cursor === undefined ? 0 : Number(cursor);
        if (!Number.isSafeInteger(after) || after < 0) throw new RequestError('request.invalid', 'cursor is not one this server issued');
        const result = await runtime.stores.audit.listEvents(req.rampart.tenant!, after, limit);
        return {
          items: result.items.map((e) => ({ leaf_index: e.leafIndex, event: JSON.parse(e.payload) as unknown })),
          next_cursor: result.nextCursor === undefined ? null : String(result.nextCursor),
        };
      },
    );
  };
