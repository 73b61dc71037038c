import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';
import { isRampartError } from '../../core/errors.js';
import { VERSION } from '../../core/version.js';
import type { Runtime } from '../../runtime.js';
import { PROBLEM_CONTENT_TYPE, problem } from '../problem.js';
import { problemResponse } from './schemas.js';

/** Unauthenticated endpoints: health, the OpenAPI document and Prometheus metrics. */
export const metaRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    app.get(
      '/v1/health',
      {
        config: { public: true },
        schema: {
          summary: 'Liveness and store reachability',
          security: [],
          response: {
            200: Type.Object({ status: Type.Literal('ok'), version: Type.String(), store: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')]) }),
            503: problemResponse('the store is unreachable'),
          },
        },
      },
      async (req, reply) => {
        try {
          await runtime.database.ping();
        } catch (err) {
          const detail = isRampartError(err) ? err.message : 'the store did not answer';
          return reply.code(503).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem('store.unavailable', detail, req.id)));
        }
        return { status: 'ok' as const, version: VERSION, store: runtime.database.dialect };
      },
    );

    app.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

    app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
      reply.header('content-type', runtime.metrics.registry.contentType);
      return runtime.metrics.registry.metrics();
    });
  };
