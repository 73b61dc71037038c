import type { FastifyPluginAsync } from 'fastify';
import type { PkiEvent } from '../../pki/events.js';
import type { Runtime } from '../../runtime.js';
import { errorResponses } from './schemas.js';

/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/**
 * `GET /v1/pki/events`: server-sent events (WHATWG HTML §9.2) of the addressed tenant's
 * revocations and of trust-bundle changes. The request is authorized and audited once, when the
 * stream opens; events carry serials and SPIFFE IDs, never keys.
 */
export const pkiEventRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    // Streams never end on their own: end them before the server closes, or shutdown would wait on them.
    const open = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const end of open) end();
    });
    app.get(
      '/v1/pki/events',
      {
        config: { authz: { action: 'pki:events', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/pki` }) } },
        schema: {
          summary: 'Revocation and trust-bundle notifications, as server-sent events (`revoked`, `bundle`)',
          response: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses },
        },
      },
      async (req, reply) => {
        const ctx = req.rampart;
        // The stream has no end to hang the audit event on: record it now, before the first byte.
        await ctx.transact(200, async () => ({ result: undefined, details: { stream: 'pki-events' } }));
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-request-id': req.id });
        res.write(': connected\n\n');
        const send = (event: PkiEvent) => res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        const unsubscribe = runtime.pkiEvents.subscribe(ctx.tenant!, send);
        const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
        heartbeat.unref();
        const stop = () => {
          clearInterval(heartbeat);
          unsubscribe();
          open.delete(end);
        };
        const end = () => {
          stop();
          res.end();
        };
        open.add(end);
        req.raw.socket.once('close', stop);
        res.once('close', stop);
      },
    );
  };
