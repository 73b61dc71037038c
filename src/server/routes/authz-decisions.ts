import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { EntityRef } from '../../audit/event.js';
import { decisionLogDetails } from '../../authz/decision-log.js';
import type { CheckRequest, Decision } from '../../authz/decisions.js';
import type { EntityJson, PreparedPolicySet } from '../../authz/evaluator.js';
import { policyStoreResource } from '../../authz/lockout.js';
import { lastLoggedDecisions, replayDecisions } from '../../authz/preview.js';
import { schemaActions } from '../../authz/schema-actions.js';
import { AuthzError, isRampartError } from '../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import { authorizeRequest } from '../authorize.js';
import { POLICY_STORE_NAME, PolicyStoreParams, errorResponses } from './schemas.js';

/** Cedar action of the decision API: asking for decisions against a store (check and batch). */
export const CHECK_ACTION = 'authz:check';
/** Cedar action of reading a store's active bundle (policies, schema, entities) for local evaluation. */
export const BUNDLE_ACTION = 'authz:bundle';
/** Cedar action of replaying logged decisions against a candidate policy set. */
export const PREVIEW_ACTION = 'authz:preview';
/** The store `POST /v1/authz/check` and `/v1/authz/batch` decide against when the body names none. */
export const DEFAULT_DECISION_STORE = 'default';
/** Requests in one batch. */
export const MAX_BATCH = 100;
/** Longest long-poll of `GET …/bundle?wait=`, seconds. */
const MAX_WAIT_S = 60;
/** Logged decisions a preview replays by default, and at most. */
const DEFAULT_PREVIEW_LAST = 1000;
const MAX_PREVIEW_LAST = 10_000;


const Uid = Type.Object(
  { type: Type.String({ minLength: 1, maxLength: 256 }), id: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false, description: 'a Cedar entity reference, {"type": "User", "id": "alice"}' },
);
const Attrs = Type.Record(Type.String(), Type.Unknown(), { description: 'Cedar JSON values (records, sets, __entity, __extn)' });
const Entity = Type.Object(
  {
    uid: Uid,
    attrs: Type.Optional(Attrs),
    parents: Type.Optional(Type.Array(Uid, { maxItems: 1000 })),
    tags: Type.Optional(Attrs),
  },
  { additionalProperties: false },
);
const checkFields = {
  principal: Uid,
  action: Uid,
  resource: Uid,
  context: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'the request context, Cedar JSON values' })),
  entities: Type.Optional(
    Type.Array(Entity, { maxItems: 10_000, description: "Cedar entity JSON; replaces the store's entity with the same uid, adds the others" }),
  ),
};
const CheckBody = Type.Object(checkFields, { additionalProperties: false });
const StoreField = {
  store: Type.Optional(Type.String({ pattern: POLICY_STORE_NAME, description: `policy store; default "${DEFAULT_DECISION_STORE}"` })),
};
const TenantCheckBody = Type.Object({ ...checkFields, ...StoreField }, { additionalProperties: false });
const BatchBody = Type.Object({ requests: Type.Array(CheckBody, { minItems: 1, maxItems: MAX_BATCH }) }, { additionalProperties: false });
const TenantBatchBody = Type.Object(
  { requests: Type.Array(CheckBody, { minItems: 1, maxItems: MAX_BATCH }), ...StoreField },
  { additionalProperties: false },
);

const DecisionAnswer = Type.Object({
  decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  reasons: Type.Array(Type.String(), { description: 'the determining policies' }),
  errors: Type.Array(Type.String(), { description: 'policies skipped because they raised an error' }),
  deny_kind: Type.Optional(Type.Union([Type.Literal('forbid'), Type.Literal('no_permit')])),
  policy_version: Type.Integer(),
  entity_revision: Type.Integer(),
  decision_id: Type.String(),
});
const BatchAnswer = Type.Object({ results: Type.Array(DecisionAnswer) });

const Bundle = Type.Object({
  store: Type.String(),
  version: Type.Integer(),
  hash: Type.String(),
  policies: Type.Record(Type.String(), Type.String(), { description: 'file name → Cedar policy text' }),
  schema: Type.Union([Type.String(), Type.Null()]),
  entity_revision: Type.Integer(),
  entities: Type.Array(Type.Unknown(), { description: 'Cedar entity JSON' }),
});
const BundleQuery = Type.Object(
  {
    wait: Type.Optional(Type.String({ pattern: '^[0-9]{1,2}$', description: `long-poll: seconds (at most ${MAX_WAIT_S}) to wait for a bundle other than version/revision` })),
    version: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'the version the caller holds' })),
    revision: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'the entity revision the caller holds' })),
  },
  { additionalProperties: false },
);

const PreviewBody = Type.Object(
  {
    policies: Type.Union([Type.String({ maxLength: 4_194_304 }), Type.Record(Type.String({ maxLength: 255 }), Type.String())], {
      description: 'the candidate: Cedar text, or file name → Cedar text (as for a push)',
    }),
    schema: Type.Optional(Type.String({ maxLength: 1_048_576 })),
    message: Type.Optional(Type.String({ maxLength: 4096, description: 'accepted for symmetry with a push; ignored' })),
    last: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PREVIEW_LAST, description: `logged decisions to replay (default ${DEFAULT_PREVIEW_LAST})` })),
  },
  { additionalProperties: false },
);
const Side = (extra: Record<string, TSchema>) =>
  Type.Object({ decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]), policies: Type.Array(Type.String()), ...extra });
const PreviewAnswer = Type.Object({
  replayed: Type.Integer(),
  flipped: Type.Integer(),
  flips: Type.Array(
    Type.Object({
      decision_id: Type.String(),
      time: Type.String(),
      request: Type.Unknown(),
      before: Side({ policy_version: Type.Integer() }),
      after: Side({ deny_kind: Type.Union([Type.Literal('forbid'), Type.Literal('no_permit'), Type.Null()]) }),
    }),
  ),
  failed: Type.Array(Type.Object({ decision_id: Type.String(), error: Type.String() })),
});

type CheckBodyT = Static<typeof CheckBody>;

const storeFromParams = (p: Record<string, string>, tenant: string): EntityRef => policyStoreResource(tenant, p.store ?? '');
const storesCollection = (_p: Record<string, string>, tenant: string): EntityRef => ({ type: 'Rampart::Collection', id: `${tenant}/authz` });

function toCheckRequest(b: CheckBodyT): CheckRequest {
  return {
    principal: b.principal,
    action: b.action,
    resource: b.resource,
    ...(b.context === undefined ? {} : { context: b.context as CheckRequest['context'] }),
    ...(b.entities === undefined
      ? {}
      : { entities: b.entities.map((e) => ({ uid: e.uid, attrs: (e.attrs ?? {}) as EntityJson['attrs'], parents: e.parents ?? [], ...(e.tags ? { tags: e.tags as EntityJson['tags'] } : {}) })) }),
  };
}

function answerOf(d: Decision): Static<typeof DecisionAnswer> {
  return {
    decision: d.decision,
    reasons: [...d.reasons],
    errors: [...d.errors],
    ...(d.denyKind ? { deny_kind: d.denyKind } : {}),
    policy_version: d.policyVersion,
    entity_revision: d.entityRevision,
    decision_id: d.decisionId,
  };
}

/**
 * The decision API: Cedar decisions against a tenant's application policy stores, the active
 * bundle for local evaluation (with a long-poll for new versions), and the impact preview of a
 * candidate policy set. Every decision is answered only after its audit event (the decision log:
 * every deny, sampled allows) is durable; when the audit log pushes back the answer is 503.
 * See docs/authz-decisions.md.
 */
export const authzDecisionRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const decide = async (req: FastifyRequest, store: string, requests: readonly CheckRequest[]): Promise<Decision[]> => {
      const tenant = req.rampart.tenant!;
      const decisions = await runtime.decisions.checkMany(tenant, store, requests);
      req.rampart.auditDetails = decisionLogDetails(
        store,
        decisions.map((decision, i) => ({ request: requests[i]!, decision })),
        runtime.config.authzDecisionLogAllowSample,
      );
      return decisions;
    };
    /** The tenant-level routes authorize the store named in the body, which the URL cannot carry. */
    const authorizeStore = async (req: FastifyRequest, store: string): Promise<void> => {
      const resource = policyStoreResource(req.rampart.tenant!, store);
      // Recorded first, so that a denial's audit event names the store that was refused.
      req.rampart.resource = resource;
      await authorizeRequest(runtime, req, { principal: req.rampart.principal!, tenant: req.rampart.tenant!, action: CHECK_ACTION, resource });
    };

    app.post<{ Params: Static<typeof PolicyStoreParams>; Body: CheckBodyT }>(
      '/v1/authz/stores/:store/check',
      {
        config: { authz: { action: CHECK_ACTION, resource: storeFromParams } },
        schema: { summary: 'Decide one request against a policy store', params: PolicyStoreParams, body: CheckBody, response: { 200: DecisionAnswer, ...errorResponses } },
      },
      async (req) => answerOf((await decide(req, req.params.store, [toCheckRequest(req.body)]))[0]!),
    );

    app.post<{ Params: Static<typeof PolicyStoreParams>; Body: Static<typeof BatchBody> }>(
      '/v1/authz/stores/:store/batch',
      {
        config: { authz: { action: CHECK_ACTION, resource: storeFromParams } },
        schema: { summary: `Decide up to ${MAX_BATCH} requests against a policy store`, params: PolicyStoreParams, body: BatchBody, response: { 200: BatchAnswer, ...errorResponses } },
      },
      async (req) => ({ results: (await decide(req, req.params.store, req.body.requests.map(toCheckRequest))).map(answerOf) }),
    );

    app.post<{ Body: Static<typeof TenantCheckBody> }>(
      '/v1/authz/check',
      {
        config: { authz: { action: CHECK_ACTION, resource: storesCollection } },
        schema: { summary: 'Decide one request against the store named in the body', body: TenantCheckBody, response: { 200: DecisionAnswer, ...errorResponses } },
      },
      async (req) => {
        const { store = DEFAULT_DECISION_STORE, ...check } = req.body;
        await authorizeStore(req, store);
        return answerOf((await decide(req, store, [toCheckRequest(check)]))[0]!);
      },
    );

    app.post<{ Body: Static<typeof TenantBatchBody> }>(
      '/v1/authz/batch',
      {
        config: { authz: { action: CHECK_ACTION, resource: storesCollection } },
        schema: { summary: `Decide up to ${MAX_BATCH} requests against the store named in the body`, body: TenantBatchBody, response: { 200: BatchAnswer, ...errorResponses } },
      },
      async (req) => {
        const store = req.body.store ?? DEFAULT_DECISION_STORE;
        await authorizeStore(req, store);
        return { results: (await decide(req, store, req.body.requests.map(toCheckRequest))).map(answerOf) };
      },
    );

    // Long-polls still waiting when the server closes are answered at once, so closing never waits for them.
    const polls = new Set<AbortController>();
    let closing = false;
    app.addHook('preClose', async () => {
      closing = true;
      for (const poll of polls) poll.abort();
    });

    app.get<{ Params: Static<typeof PolicyStoreParams>; Querystring: Static<typeof BundleQuery> }>(
      '/v1/authz/stores/:store/bundle',
      {
        config: { authz: { action: BUNDLE_ACTION, resource: storeFromParams } },
        schema: {
          summary: "The store's active policies, schema and entities; with ?wait= a long-poll for the next change",
          params: PolicyStoreParams,
          querystring: BundleQuery,
          response: { 200: Bundle, ...errorResponses },
        },
      },
      async (req) => {
        const tenant = req.rampart.tenant!;
        const { store } = req.params;
        const waitS = Math.min(Number(req.query.wait ?? 0), MAX_WAIT_S);
        const held = { version: req.query.version, revision: req.query.revision };
        const isHeld = (b: { version: number; entityRevision: number }) =>
          held.version !== undefined && Number(held.version) === b.version && Number(held.revision ?? 0) === b.entityRevision;
        let bundle = await runtime.decisions.bundle(tenant, store);
        if (waitS > 0 && isHeld(bundle)) {
          const poll = new AbortController();
          polls.add(poll);
          const onClose = () => poll.abort();
          req.raw.once('close', onClose);
          // The server began closing, or the client left, while the bundle was read: neither
          // event comes again, and the poll would be held for its whole wait.
          if (closing || req.raw.destroyed) poll.abort();
          try {
            // Registered before the bundle is read again, so a change in between still wakes it.
            const changed = runtime.decisions.changed(tenant, waitS * 1000, poll.signal);
            bundle = await runtime.decisions.bundle(tenant, store);
            if (isHeld(bundle) && (await changed)) bundle = await runtime.decisions.bundle(tenant, store);
          } finally {
            poll.abort();
            polls.delete(poll);
            req.raw.off('close', onClose);
          }
        }
        return {
          store,
          version: bundle.version,
          hash: bundle.hash,
          policies: { ...bundle.policies },
          schema: bundle.schema,
          entity_revision: bundle.entityRevision,
          entities: [...bundle.entities],
        };
      },
    );

    app.post<{ Params: Static<typeof PolicyStoreParams>; Body: Static<typeof PreviewBody> }>(
      '/v1/authz/stores/:store/preview',
      {
        config: { authz: { action: PREVIEW_ACTION, resource: storeFromParams } },
        schema: {
          summary: 'Replay the last logged decisions of a store against a candidate policy set; list those that would flip',
          params: PolicyStoreParams,
          body: PreviewBody,
          response: { 200: PreviewAnswer, ...errorResponses },
        },
      },
      async (req) => {
        const tenant = req.rampart.tenant!;
        const { store } = req.params;
        const policies = typeof req.body.policies === 'string' ? { 'policies.cedar': req.body.policies } : req.body.policies;
        const evaluator = runtime.decisions.evaluator;
        let prepared: PreparedPolicySet;
        try {
          prepared = await evaluator.prepare({ policies, ...(req.body.schema === undefined ? {} : { schema: req.body.schema }) });
        } catch (err) {
          throw new AuthzError('authz.candidate_invalid', `the candidate policy set does not parse: ${(err as Error).message}`, { cause: err });
        }
        const current = await runtime.decisions.bundle(tenant, store).catch((err: unknown) => {
          if (isRampartError(err) && err.code === 'authz.store_empty') return undefined;
          throw err;
        });
        const logged = await lastLoggedDecisions(runtime.stores.audit, {
          tenant,
          store,
          resource: policyStoreResource(tenant, store).id,
          decisionAction: CHECK_ACTION,
          limit: req.body.last ?? DEFAULT_PREVIEW_LAST,
        });
        const actions = req.body.schema === undefined ? undefined : schemaActions(req.body.schema);
        const result = replayDecisions(evaluator, { prepared, actions }, current?.entities ?? [], logged);
        req.rampart.auditDetails = { store, replayed: result.replayed, flipped: result.flips.length, failed: result.failed.length };
        return { replayed: result.replayed, flipped: result.flips.length, flips: result.flips, failed: result.failed };
      },
    );
  };
