import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthzRequest } from '../../authz/authorizer.js';
import { CedarAuthorizer } from '../../authz/cedar-authorizer.js';
import { RAMPART_POLICY_STORE } from '../../authz/entities.js';
import { MAX_ENTITIES, entityProblems } from '../../authz/entity-json.js';
import { policyStoreResource } from '../../authz/lockout.js';
import {
  type PolicyContent,
  type Rejection,
  checkContentShape,
  contentOf,
  diffVersions,
  judgeCandidate,
  requireStore,
  requireVersion,
  storeVersion,
  validationSchema,
} from '../../authz/policy-versions.js';
import { seedPolicies } from '../../authz/seed-policies.js';
import type { CedarEntityJson, PolicyStore, PolicyVersionRecord, PolicyVersionSummary } from '../../authz/store.js';
import { AuthzError, RequestError, isRampartError } from '../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import { PROBLEM_CONTENT_TYPE, problem } from '../problem.js';
import { PageQuery, PolicyStoreParams, errorResponses, page, pageOf, problemResponse } from './schemas.js';

const VersionParams = Type.Object({ store: PolicyStoreParams.properties.store, version: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }) });
const DiffQuery = Type.Object(
  { from: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }), to: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }) },
  { additionalProperties: false },
);

const FileMap = (pattern: string, description: string) =>
  Type.Record(Type.String({ pattern }), Type.String(), { description, additionalProperties: false });
const PushBody = Type.Object(
  {
    policies: Type.Union([
      Type.String({ description: 'one policy file, stored as policies.cedar' }),
      FileMap('^([A-Za-z0-9_./-]{1,128}\\.cedar|template-links\\.json)$', 'file name → Cedar policy text; template-links.json links templates'),
    ]),
    schema: Type.Optional(Type.String({ description: 'Cedar schema (human-readable syntax); not for the rampart store' })),
    tests: Type.Optional(FileMap('^([A-Za-z0-9_./-]{1,128}\\.test|([A-Za-z0-9_./-]{1,128}/)?tests)\\.yaml$', 'file name → policy tests (YAML)')),
    message: Type.String({ maxLength: 1024 }),
  },
  { additionalProperties: false },
);
const RollbackBody = Type.Object(
  { version: Type.Integer({ minimum: 1 }), message: Type.Optional(Type.String({ maxLength: 1024 })) },
  { additionalProperties: false },
);
const ReseedBody = Type.Object({ message: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false });
const EntityUid = Type.Object({ type: Type.String({ minLength: 1 }), id: Type.String() }, { additionalProperties: false });
const Entity = Type.Object(
  {
    uid: EntityUid,
    attrs: Type.Record(Type.String(), Type.Unknown()),
    parents: Type.Array(EntityUid),
    tags: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
const EntitiesBody = Type.Array(Entity, { description: `at most ${MAX_ENTITIES} entities` });

const VersionSummary = Type.Object({
  version: Type.Integer(),
  hash: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('superseded'), Type.Literal('rejected')]),
  author: Type.String(),
  message: Type.String(),
  created_at: Type.String(),
  reasons: Type.Optional(Type.Array(Type.String())),
});
const VersionDetail = Type.Composite([
  VersionSummary,
  Type.Object({
    policies: Type.Record(Type.String(), Type.String()),
    schema: Type.Union([Type.String(), Type.Null()]),
    tests: Type.Record(Type.String(), Type.String()),
    diff: Type.Object({
      against: Type.Union([Type.Integer(), Type.Null()], { description: 'the previous version; null for version 1' }),
      files: Type.Record(Type.String(), Type.String(), { description: 'file → unified diff; unchanged files are left out' }),
    }),
  }),
]);
const DiffView = Type.Object({ from: Type.Integer(), to: Type.Integer(), files: Type.Record(Type.String(), Type.String()) });
const StoreView = Type.Object({ store: Type.String(), active_version: Type.Union([Type.Integer(), Type.Null()]), latest_version: Type.Integer() });
const EntitiesView = Type.Object({ revision: Type.Integer(), entities: Type.Array(Type.Unknown()) });
const EntitiesWritten = Type.Object({ revision: Type.Integer(), count: Type.Integer() });
const rejected = {
  409: problemResponse('lockout: the version was stored as rejected'),
  413: problemResponse('a size limit was exceeded; nothing was stored'),
  422: problemResponse('the version was stored as rejected; `errors` has the reasons and `version` its number'),
};

const summaryView = (v: PolicyVersionSummary) => ({
  version: v.version,
  hash: v.hash,
  status: v.status,
  author: v.author,
  message: v.message,
  created_at: v.createdAt,
  ...(v.reasons ? { reasons: [...v.reasons] } : {}),
});

const authzCollection = (_p: Record<string, string>, tenant: string) => ({ type: 'Rampart::Collection', id: `${tenant}/authz` });
const storeResource = (p: Record<string, string>, tenant: string) => policyStoreResource(tenant, p.store ?? '');

/**
 * Policy stores, their versions and their entities (docs/authz-policies.md). Every change is a
 * new version judged before activation; after an activation, rollback or entity change commits,
 * the authorizer is invalidated before the answer is sent, so no request that follows the
 * acknowledgement is decided by the old state.
 */
export const authzPolicyRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const evaluator = runtime.decisions.evaluator;
    const judgeDeps = { evaluator, authorizerFor: (policies: PolicyStore) => new CedarAuthorizer({ policies, evaluator }) };

    /** Judges content, stores it as the next version, and answers 201 or the rejection. */
    async function commit(req: FastifyRequest, reply: FastifyReply, store: string, content: PolicyContent, message: string, details: Record<string, string | number>) {
      const ctx = req.rampart;
      const tenant = ctx.tenant!;
      const principal = ctx.principal!;
      checkContentShape(store, content);
      // Judged before the transaction: Cedar work is CPU-bound and no database lock should wait
      // on it. The tests therefore run against the entities as read here, which an entity change
      // committing in between could make one revision old.
      const { entities } = await runtime.stores.entities.entities(tenant, store);
      const rejection = await judgeCandidate(judgeDeps, { tenant, store, content, entities, caller: principal, context: requestContext(req, runtime) });
      const author = `${principal.type}::${principal.id}`;
      if (rejection) {
        // The rejected version is kept for the record; the request's own audit event (outcome
        // invalid, with the code) is written by the audit hook as for any refused request.
        const record = await retryingConflicts(() =>
          runtime.transact((s) => storeVersion(s.policies, runtime.clock, { tenant, store, content, author, message, rejection })),
        );
        return sendRejection(req, reply, record, rejection);
      }
      const record = await retryingConflicts(() =>
        ctx.transact(201, async (s) => {
          const r = await storeVersion(s.policies, runtime.clock, { tenant, store, content, author, message, rejection: undefined });
          return { result: r, details: { store, version: r.version, hash: r.hash, ...details } };
        }),
      );
      runtime.authorizer.invalidate(tenant);
      return reply.code(201).send(summaryView(record));
    }

    app.get<{ Querystring: Static<typeof PageQuery> }>(
      '/v1/authz/stores',
      {
        config: { authz: { action: 'authz:list-stores', resource: authzCollection } },
        schema: { summary: "List the tenant's policy stores", querystring: PageQuery, response: { 200: page(StoreView), ...errorResponses } },
      },
      async (req) => {
        const { limit, cursor } = pageOf(req.query);
        const rows = await runtime.stores.policies.stores(req.rampart.tenant!, { limit: limit + 1, after: cursor });
        const items = rows.slice(0, limit).map((r) => ({ store: r.store, active_version: r.activeVersion ?? null, latest_version: r.latestVersion }));
        return { items, next_cursor: rows.length > limit ? items[items.length - 1]!.store : null };
      },
    );

    app.put<{ Params: Static<typeof PolicyStoreParams>; Body: Static<typeof PushBody> }>(
      '/v1/authz/stores/:store/policies',
      {
        config: { authz: { action: 'authz:push', resource: storeResource } },
        schema: {
          summary: 'Push a new policy version: validated, tested and activated, or stored as rejected',
          params: PolicyStoreParams,
          body: PushBody,
          response: { 201: VersionSummary, ...rejected, ...errorResponses },
        },
      },
      async (req, reply) => {
        const { policies, schema, tests, message } = req.body;
        const content: PolicyContent = {
          policies: typeof policies === 'string' ? { 'policies.cedar': policies } : policies,
          schema: schema ?? null,
          tests: tests ?? {},
        };
        return commit(req, reply, req.params.store, content, message, {});
      },
    );

    app.post<{ Params: Static<typeof PolicyStoreParams>; Body: Static<typeof RollbackBody> }>(
      '/v1/authz/stores/:store/rollback',
      {
        config: { authz: { action: 'authz:rollback', resource: storeResource } },
        schema: {
          summary: 'Roll back: a new version whose content equals an older one, judged as a push is',
          params: PolicyStoreParams,
          body: RollbackBody,
          response: { 201: VersionSummary, ...rejected, ...errorResponses },
        },
      },
      async (req, reply) => {
        const { store } = req.params;
        const { version } = req.body;
        const content = await contentOf(runtime.stores.policies, req.rampart.tenant!, store, version);
        return commit(req, reply, store, content, req.body.message ?? `rollback to version ${version}`, { rolled_back_to: version });
      },
    );

    app.post<{ Body: Static<typeof ReseedBody> }>(
      `/v1/authz/stores/${RAMPART_POLICY_STORE}/reseed`,
      {
        config: { authz: { action: 'authz:push', resource: (_p, tenant) => policyStoreResource(tenant, RAMPART_POLICY_STORE) } },
        schema: {
          summary: "Push the current seed policies to the tenant's rampart store (brings older tenants up to date)",
          body: ReseedBody,
          response: { 201: VersionSummary, ...rejected, ...errorResponses },
        },
      },
      async (req, reply) => {
        const content: PolicyContent = { policies: seedPolicies(req.rampart.tenant!), schema: null, tests: {} };
        return commit(req, reply, RAMPART_POLICY_STORE, content, req.body.message ?? 'reseed: the current seed policies', { reseeded: 'true' });
      },
    );

    app.get<{ Params: Static<typeof PolicyStoreParams>; Querystring: Static<typeof PageQuery> }>(
      '/v1/authz/stores/:store/versions',
      {
        config: { authz: { action: 'authz:read', resource: storeResource } },
        schema: { summary: 'List versions, newest first', params: PolicyStoreParams, querystring: PageQuery, response: { 200: page(VersionSummary), ...errorResponses } },
      },
      async (req) => {
        const { limit, cursor } = pageOf(req.query);
        const tenant = req.rampart.tenant!;
        await requireStore(runtime.stores.policies, tenant, req.params.store);
        const before = cursor === undefined ? undefined : Number(cursor);
        if (before !== undefined && !(Number.isInteger(before) && before > 0)) throw new RequestError('request.invalid', 'cursor must be the next_cursor of a previous page');
        const rows = await runtime.stores.policies.versions(tenant, req.params.store, { limit: limit + 1, before });
        const items = rows.slice(0, limit).map(summaryView);
        return { items, next_cursor: rows.length > limit ? String(items[items.length - 1]!.version) : null };
      },
    );

    app.get<{ Params: Static<typeof VersionParams> }>(
      '/v1/authz/stores/:store/versions/:version',
      {
        config: { authz: { action: 'authz:read', resource: storeResource } },
        schema: { summary: 'One version: its content and its diff against the previous version', params: VersionParams, response: { 200: VersionDetail, ...errorResponses } },
      },
      async (req) => {
        const tenant = req.rampart.tenant!;
        const n = Number(req.params.version);
        const record = await requireVersion(runtime.stores.policies, tenant, req.params.store, n);
        const previous = n > 1 ? await runtime.stores.policies.get(tenant, req.params.store, n - 1) : undefined;
        return detailView(record, previous);
      },
    );

    app.get<{ Params: Static<typeof PolicyStoreParams>; Querystring: Static<typeof DiffQuery> }>(
      '/v1/authz/stores/:store/diff',
      {
        config: { authz: { action: 'authz:read', resource: storeResource } },
        schema: { summary: 'Unified diffs between two versions, per file', params: PolicyStoreParams, querystring: DiffQuery, response: { 200: DiffView, ...errorResponses } },
      },
      async (req) => {
        const tenant = req.rampart.tenant!;
        const from = await requireVersion(runtime.stores.policies, tenant, req.params.store, Number(req.query.from));
        const to = await requireVersion(runtime.stores.policies, tenant, req.params.store, Number(req.query.to));
        return { from: from.version, to: to.version, files: diffVersions(from, to) };
      },
    );

    app.put<{ Params: Static<typeof PolicyStoreParams>; Body: Static<typeof EntitiesBody> }>(
      '/v1/authz/stores/:store/entities',
      {
        config: { authz: { action: 'authz:put-entities', resource: storeResource } },
        schema: {
          summary: "Replace the store's entities (Cedar entity JSON)",
          params: PolicyStoreParams,
          body: EntitiesBody,
          response: { 200: EntitiesWritten, 413: problemResponse('too many entities'), ...errorResponses },
        },
      },
      async (req, reply) => {
        const tenant = req.rampart.tenant!;
        const { store } = req.params;
        if (req.body.length > MAX_ENTITIES) throw new AuthzError('authz.limit_exceeded', `${req.body.length} entities; at most ${MAX_ENTITIES}`);
        // No version needed: entities may come first, so that the first push's tests can use them.
        const active = await runtime.stores.policies.active(tenant, store);
        const problems = entityProblems(req.body, validationSchema(store, active?.schema ?? null));
        if (problems.length > 0) {
          req.rampart.errorCode = 'authz.entities_invalid';
          const body = problem('authz.entities_invalid', problems.slice(0, 5).join('; '), req.id, {
            errors: problems.map((message) => ({ path: 'body', message })),
          });
          return reply.code(body.status).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
        }
        const entities = req.body as CedarEntityJson[];
        const revision = await req.rampart.transact(200, async (s) => {
          const r = await s.entities.replace(tenant, store, entities, runtime.clock.now().toISOString());
          return { result: r, details: { store, entity_revision: r, entity_count: entities.length } };
        });
        runtime.authorizer.invalidate(tenant);
        return reply.code(200).send({ revision, count: entities.length });
      },
    );

    app.get<{ Params: Static<typeof PolicyStoreParams> }>(
      '/v1/authz/stores/:store/entities',
      {
        config: { authz: { action: 'authz:read', resource: storeResource } },
        schema: { summary: "The store's entities and their revision", params: PolicyStoreParams, response: { 200: EntitiesView, ...errorResponses } },
      },
      async (req) => {
        const tenant = req.rampart.tenant!;
        const snapshot = await runtime.stores.entities.entities(tenant, req.params.store);
        return { revision: snapshot.revision, entities: [...snapshot.entities] };
      },
    );
  };

/**
 * Two changes to one store racing for a version number: the loser's transaction rolled back
 * whole (nothing stored, no event) and is run again with the next number, up to three times.
 */
async function retryingConflicts<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!(isRampartError(err) && err.code === 'authz.version_conflict') || attempt === 3) throw err;
    }
  }
}

/** The context the request path gives every decision (src/server/authorize.ts), for the lockout probe. */
function requestContext(req: FastifyRequest, runtime: Runtime): AuthzRequest['context'] {
  const ctx = req.rampart;
  return {
    tenant: ctx.tenant!,
    source_ip: req.ip,
    mtls: ctx.principal!.authMethod === 'mtls',
    request_time: Math.floor(runtime.clock.now().getTime() / 1000),
  };
}

/**
 * A rejection as problem+json, with the stored version's number and one `errors` entry per
 * reason (`path` is the `file:line:column` the reason starts with, when it has one).
 */
function sendRejection(req: FastifyRequest, reply: FastifyReply, record: PolicyVersionRecord, rejection: Rejection) {
  req.rampart.errorCode = rejection.code;
  const errors = rejection.reasons.map((reason) => {
    const m = /^([^\s:]+(?::\d+:\d+)?): (.*)$/s.exec(reason);
    return m ? { path: m[1]!, message: m[2]! } : { path: '', message: reason };
  });
  const shown = rejection.reasons.slice(0, 5).join('; ');
  const more = rejection.reasons.length > 5 ? ` (and ${rejection.reasons.length - 5} more)` : '';
  const body = { ...problem(rejection.code, `version ${record.version} rejected: ${shown}${more}`, req.id, { errors }), version: record.version };
  return reply.code(body.status).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

function detailView(record: PolicyVersionRecord, previous: PolicyVersionRecord | undefined) {
  return {
    ...summaryView(record),
    policies: { ...record.policies },
    schema: record.schema,
    tests: { ...(record.tests ?? {}) },
    diff: { against: previous ? previous.version : null, files: diffVersions(previous, record) },
  };
}
