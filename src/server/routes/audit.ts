import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { parseEventFilter } from '../../audit/query.js';
import type { LegalHold } from '../../audit/retention-store.js';
import type { SealedSubject } from '../../audit/subjects.js';
import type { EntityRef } from '../../audit/event.js';
import { AuthzError, RequestError } from '../../core/errors.js';
import { DEFAULT_TENANT } from '../../core/ids.js';
import type { Runtime } from '../../runtime.js';
import { PageQuery, errorResponses, pageOf } from './schemas.js';

const EventPage = Type.Object({
  items: Type.Array(
    Type.Object({
      leaf_index: Type.Union([Type.Integer(), Type.Null()]),
      event: Type.Unknown({ description: 'the event; null once retention pruned it' }),
      pruned: Type.Optional(Type.Literal(true, { description: 'present (true) only when retention pruned the event: `event` is null, the leaf and its proofs remain' })),
    }),
  ),
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
const LegalHoldBody = Type.Object(
  {
    enabled: Type.Boolean({ description: 'true places the hold (pruning stops), false releases it' }),
    reason: Type.String({ minLength: 1, maxLength: 1024, description: 'why: a case number, a ticket' }),
  },
  { additionalProperties: false },
);
const LegalHoldAnswer = Type.Object({
  enabled: Type.Boolean(),
  reason: Type.String(),
  since: Type.Union([Type.String({ description: 'RFC 3339 time the hold in force was placed' }), Type.Null()]),
});

/** The legal hold covers every tenant's events, so only the operator tenant may be addressed. */
function operatorHoldResource(_params: Record<string, string>, tenant: string): EntityRef {
  if (tenant !== DEFAULT_TENANT) throw new AuthzError('authz.denied', 'access denied');
  return { type: 'Rampart::Collection', id: 'audit-log' };
}

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
          // A pruned event is listed, not skipped: its leaf index still has an inclusion proof,
          // and a reader can tell "pruned by retention" from "never happened".
          if (e.prunedAt !== null) {
            items.push({ leaf_index: e.leafIndex, event: null, pruned: true as const });
            continue;
          }
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

    app.get(
      '/v1/audit/legal-hold',
      {
        config: { authz: { action: 'audit:legal-hold', resource: operatorHoldResource } },
        schema: { summary: 'Whether a legal hold stops audit retention from pruning', response: { 200: LegalHoldAnswer, ...errorResponses } },
      },
      async () => holdAnswer(await runtime.stores.legalHold.get()),
    );

    app.post<{ Body: Static<typeof LegalHoldBody> }>(
      '/v1/audit/legal-hold',
      {
        config: { authz: { action: 'audit:legal-hold', resource: operatorHoldResource } },
        schema: {
          summary: 'Place or release the legal hold: while it is on, no audit payload is pruned',
          body: LegalHoldBody,
          response: { 200: LegalHoldAnswer, ...errorResponses },
        },
      },
      async (req) => {
        const { enabled, reason } = req.body;
        const hold = await req.rampart.transact(200, async (s) => {
          const h = await s.legalHold.set(enabled, reason, runtime.clock.now().toISOString());
          return { result: h, details: { enabled: h.enabled, reason: h.reason, since: h.since ?? null } };
        });
        return holdAnswer(hold);
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

function holdAnswer(h: LegalHold): Static<typeof LegalHoldAnswer> {
  return { enabled: h.enabled, reason: h.reason, since: h.since ?? null };
}
