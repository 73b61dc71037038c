import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { parseEventFilter } from '../../audit/query.js';
import type { SealedSubject } from '../../audit/subjects.js';
import { RequestError } from '../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import { PageQuery, errorResponses, pageOf } from './schemas.js';

const EventPage = Type.Object({
  items: Type.Array(Type.Object({ leaf_index: Type.Union([Type.Integer(), Type.Null()]), event: Type.Unknown() })),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'the next page; null on the last page' }),
  resume_cursor: Type.String({ description: 'where to continue later for events written after this page (what `audit tail -f` polls with)' }),
});

const EventQuery = Type.Composite(
  [
    PageQuery,
    Type.Object({
      since: Type.Optional(Type.String({ maxLength: 64, description: 'RFC 3339 time, inclusive' })),
      until: Type.Optional(Type.String({ maxLength: 64, description: 'RFC 3339 time, exclusive' })),
      principal: Type.Optional(Type.String({ maxLength: 2100, description: 'principal id (token accessor, SPIFFE ID) or Type::"id"' })),
      action: Type.Optional(Type.String({ maxLength: 128 })),
      resource: Type.Optional(Type.String({ maxLength: 2100, description: 'resource id or Type::"id"' })),
      outcome: Type.Optional(Type.String({ enum: ['success', 'denied', 'invalid', 'failed', 'unauthenticated'] })),
    }),
  ],
  { additionalProperties: false },
);

const HashBody = Type.Object({ input: Type.String({ maxLength: 65536 }) }, { additionalProperties: false });
const EraseBody = Type.Object({ subject: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });

/**
 * Reading the addressed tenant's audit events (oldest first, each with its Merkle leaf index so
 * its inclusion can be proven), and Vault's audit-hash helper.
 */
export const auditRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    app.get<{ Querystring: Static<typeof EventQuery> }>(
      '/v1/audit/events',
      {
        config: { authz: { action: 'audit:read', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/audit` }) } },
        schema: { summary: 'List audit events, filtered and paged', querystring: EventQuery, response: { 200: EventPage, ...errorResponses } },
      },
      async (req) => {
        const { limit, cursor } = pageOf(req.query);
        const after = cursor === undefined ? 0 : Number(cursor);
        if (!Number.isSafeInteger(after) || after < 0) throw new RequestError('request.invalid', 'cursor is not one this server issued');
        const filter = parseEventFilter(req.query);
        const tenant = req.rampart.tenant!;
        const result = await runtime.stores.audit.listEvents(tenant, after, limit, filter);
        const items = [];
        for (const e of result.items) {
          const event = JSON.parse(e.payload) as { subject?: SealedSubject };
          // The stored bytes stay as they are (they are the Merkle leaf); readers get the subject
          // section opened, or marked erased once its key was destroyed.
          const view = event.subject ? { ...event, subject: await runtime.subjects.open(runtime.stores.subjectKeys, tenant, event.subject) } : event;
          items.push({ leaf_index: e.leafIndex, event: view });
        }
        return {
          items,
          next_cursor: result.nextCursor === undefined ? null : String(result.nextCursor),
          resume_cursor: String(result.items.at(-1)?.id ?? after),
        };
      },
    );

    app.post<{ Body: Static<typeof EraseBody> }>(
      '/v1/audit/erase',
      {
        config: { authz: { action: 'audit:erase', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/audit` }) } },
        schema: {
          summary: "Erase a data subject's personal data from the audit log by destroying its keys (crypto-shredding, GDPR Art. 17)",
          body: EraseBody,
          response: { 200: Type.Object({ subject_ref: Type.String(), keys_destroyed: Type.Integer() }), ...errorResponses },
        },
      },
      async (req) => {
        const tenant = req.rampart.tenant!;
        const subjectRef = runtime.subjects.refOf(req.body.subject);
        const destroyed = await req.rampart.transact(200, async (s) => {
          const n = await runtime.subjects.erase(s.subjectKeys, tenant, req.body.subject, runtime.clock.now().toISOString());
          return { result: n, details: { subject_ref: subjectRef, keys_destroyed: n } };
        });
        return { subject_ref: subjectRef, keys_destroyed: destroyed };
      },
    );

    app.post<{ Body: Static<typeof HashBody> }>(
      '/v1/audit/hash',
      {
        config: { authz: { action: 'audit:hash', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/audit` }) } },
        schema: {
          summary: 'HMAC a value with the audit log salt, as it would appear in an audit event (Vault sys/audit-hash)',
          body: HashBody,
          response: { 200: Type.Object({ hash: Type.String() }), ...errorResponses },
        },
      },
      async (req) => ({ hash: runtime.auditHasher.hash(req.body.input) }),
    );
  };
