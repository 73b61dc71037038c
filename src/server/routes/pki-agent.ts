import 'reflect-metadata';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { PkiError } from '../../core/errors.js';
import type { Principal } from '../../identity/principal.js';
import { requireTenant } from '../../identity/tenants.js';
import { actingParent, joinTokenAgentId, parentsOf } from '../../pki/attestation.js';
import type { AttestationMethod } from '../../pki/attestation-store.js';
import { chainPem } from '../../pki/ca.js';
import { checkJoinToken, createJoinToken, DEFAULT_JOIN_TOKEN_TTL_MS, joinTokenId, MAX_JOIN_TOKEN_TTL_MS } from '../../pki/join-token.js';
import { attestK8sToken, k8sAttestors } from '../../pki/k8s-psat.js';
import { registrationView } from '../../pki/registration.js';
import type { RegistrationEntry } from '../../pki/registration-store.js';
import { type SpiffeId, parseSpiffeId } from '../../pki/spiffe.js';
import { parseDuration } from '../../core/duration.js';
import { resolveSvidTtl, signSvidFromCsr, svidIdentityFor, type SignedSvid } from '../../pki/svid-signing.js';
import type { Runtime } from '../../runtime.js';
import { authorizeRequest } from '../authorize.js';
import { Registration } from './pki-registrations.js';
import { errorResponses } from './schemas.js';

const Svid = Type.Object({
  spiffe_id: Type.String(),
  certificate: Type.String({ description: 'PEM X.509-SVID' }),
  issuing_ca: Type.String({ description: 'PEM of the intermediate that signed it' }),
  ca_chain: Type.Array(Type.String(), { description: 'PEM certificates from the issuing CA up to the root' }),
  serial_number: Type.String(),
  expiration: Type.Integer({ description: 'notAfter, Unix seconds' }),
});
const TokenBody = Type.Object(
  {
    ttl: Type.Optional(Type.String({ maxLength: 32, description: 'how long the token may wait for its one use (default 1h, at most 720h)' })),
    spiffe_id: Type.Optional(Type.String({ maxLength: 2048, description: 'the agent SPIFFE ID to grant (default spiffe://<td>/rampart/agent/join_token/<id>)' })),
  },
  { additionalProperties: false },
);
const CreatedToken = Type.Object({
  token: Type.String({ description: 'the join token; shown once' }),
  id: Type.String(),
  spiffe_id: Type.String({ description: 'the agent ID the token grants' }),
  expires_at: Type.String(),
});
const AttestBody = Type.Object(
  {
    csr: Type.String({ maxLength: 65_536, description: "PEM PKCS #10 request for the agent's own key" }),
    join_token: Type.Optional(Type.String({ maxLength: 256 })),
    k8s_token: Type.Optional(Type.String({ maxLength: 16_384, description: 'projected service-account token (JWT)' })),
  },
  { additionalProperties: false },
);
const Attested = Type.Composite([Svid, Type.Object({ selectors: Type.Array(Type.String(), { description: 'the node selectors proved' }) })]);
const SvidsBody = Type.Object(
  {
    requests: Type.Array(
      Type.Object({ registration_id: Type.String({ pattern: '^reg_[A-Za-z0-9_-]{22}$' }), csr: Type.String({ maxLength: 65_536 }) }, { additionalProperties: false }),
      { minItems: 1, maxItems: 100 },
    ),
  },
  { additionalProperties: false },
);
const Svids = Type.Object({ svids: Type.Array(Type.Composite([Type.Object({ registration_id: Type.String() }), Svid])) });

const pkiCollection = (_p: Record<string, string>, tenant: string) => ({ type: 'Rampart::Collection', id: `${tenant}/pki` });
const unixSeconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/**
 * Node attestation and the agent API (docs/pki.md, "Node attestation", "The agent"):
 * join tokens, `attest` (join token or Kubernetes token → the agent's SVID), and, for an agent
 * authenticated with that SVID, its registration entries and their SVIDs.
 */
export const pkiAgentRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const attestors = k8sAttestors(runtime.config.k8sAttestors);
    const svidView = (spiffeId: string, signed: SignedSvid) => {
      const caChain = [runtime.ca.intermediate.certificate, ...runtime.ca.roots].map((c) => c.toString('pem'));
      return {
        spiffe_id: spiffeId,
        certificate: chainPem(signed.certificate, runtime.ca.intermediate.certificate),
        issuing_ca: caChain[0]!,
        ca_chain: caChain,
        serial_number: signed.record.serialNumber,
        expiration: unixSeconds(signed.certificate.notAfter),
      };
    };
    const sign = (tenant: string, spiffeId: SpiffeId, csrPem: string, ttlMs: number, dnsNames?: readonly string[]) =>
      signSvidFromCsr(runtime.ca.intermediate, { tenant, spiffeId, csrPem, ttlMs, clock: runtime.clock, advertiseAddr: runtime.config.advertiseAddr, ...(dnsNames ? { dnsNames } : {}) });

    app.post<{ Body: Static<typeof TokenBody> }>(
      '/v1/pki/agent/tokens',
      {
        config: { authz: { action: 'pki:agent-token-create', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/pki/agent-tokens` }) } },
        schema: { summary: 'Create a one-time join token for node attestation', body: TokenBody, response: { 201: CreatedToken, ...errorResponses } },
      },
      async (req, reply) => {
        const ctx = req.rampart;
        const ttlMs = req.body.ttl === undefined ? DEFAULT_JOIN_TOKEN_TTL_MS : parseDuration(req.body.ttl);
        if (ttlMs === undefined || ttlMs < 60_000 || ttlMs > MAX_JOIN_TOKEN_TTL_MS) throw new PkiError('pki.ttl_invalid', 'ttl must be a duration between 1m and 720h');
        const { trustDomain } = await requireTenant(runtime.stores.tenants, ctx.tenant!);
        const requested = req.body.spiffe_id === undefined ? null : svidIdentityFor(req.body.spiffe_id, trustDomain);
        const created = createJoinToken(runtime.clock, { tenant: ctx.tenant!, ttlMs, spiffeId: requested, createdBy: `${ctx.principal!.type}::${ctx.principal!.id}` });
        const agentId = joinTokenAgentId(trustDomain, created.record.id, requested);
        await ctx.transact(201, async (s) => {
          await s.joinTokens.insert(created.record);
          return { result: undefined, details: { join_token_id: created.record.id, spiffe_id: agentId, expires_at: created.record.expiresAt } };
        });
        return reply.code(201).send({ token: created.token, id: created.record.id, spiffe_id: agentId, expires_at: created.record.expiresAt });
      },
    );

    app.post<{ Body: Static<typeof AttestBody> }>(
      '/v1/pki/agent/attest',
      {
        config: { credentialsInBody: true },
        schema: { summary: "Attest a node (join token or Kubernetes token) and sign the agent's CSR", security: [], body: AttestBody, response: { 200: Attested, ...errorResponses } },
      },
      async (req) => {
        const ctx = req.rampart;
        ctx.action = 'pki:attest';
        const { join_token: joinToken, k8s_token: k8sToken, csr } = req.body;
        if ((joinToken === undefined) === (k8sToken === undefined)) throw new PkiError('pki.attestation_invalid', 'send exactly one of join_token and k8s_token');
        let tenant: string;
        let agentId: SpiffeId;
        let selectors: readonly string[];
        let method: AttestationMethod;
        let tokenId: string | undefined;
        if (joinToken !== undefined) {
          method = 'join_token';
          tokenId = joinTokenId(joinToken);
          if (tokenId !== undefined) ctx.resource = { type: 'Rampart::JoinToken', id: tokenId };
          const record = await checkJoinToken(runtime.stores.joinTokens, runtime.clock, joinToken);
          tenant = record.tenant;
          ctx.tenant = tenant;
          agentId = joinTokenAgentId((await requireTenant(runtime.stores.tenants, tenant)).trustDomain, record.id, record.spiffeId);
          selectors = [];
        } else {
          method = 'k8s_psat';
          const proof = await attestK8sToken(attestors, k8sToken!, runtime.clock);
          tenant = proof.attestor.tenant;
          ctx.tenant = tenant;
          const { trustDomain } = await requireTenant(runtime.stores.tenants, tenant);
          agentId = svidIdentityFor(`spiffe://${trustDomain}${proof.agentPath}`, trustDomain);
          selectors = proof.selectors;
        }
        const principal: Principal = { type: 'Rampart::Workload', id: agentId, tenant, roles: [], authMethod: 'attestation', displayName: agentId };
        ctx.principal = principal;
        ctx.resource = { type: 'Rampart::SpiffeId', id: agentId };
        await authorizeRequest(runtime, req, { principal, tenant, action: 'pki:attest', resource: ctx.resource });
        const signed = await sign(tenant, agentId, csr, resolveSvidTtl(undefined, runtime.config.pkiMaxTtlMs));
        const now = runtime.clock.now().toISOString();
        await ctx.transact(200, async (s) => {
          // The conditional update decides a race between two uses of one token: the loser's
          // transaction (with its certificate) rolls back and it is answered as a replay.
          if (tokenId !== undefined && !(await s.joinTokens.consume(tokenId, now, agentId))) {
            throw new PkiError('pki.join_token_replayed', 'the join token was already used');
          }
          await s.agents.upsert({ tenant, spiffeId: agentId, method, selectors, attestedAt: now });
          await s.certificates.insert(signed.record);
          return {
            result: undefined,
            details: { method, ...(tokenId ? { join_token_id: tokenId } : {}), selectors, serial_number: signed.record.serialNumber, not_after: signed.record.notAfter },
          };
        });
        return { ...svidView(agentId, signed), selectors: [...selectors] };
      },
    );

    app.get(
      '/v1/pki/agent/registrations',
      {
        config: { authz: { action: 'pki:agent-sync', resource: pkiCollection } },
        schema: { summary: 'The registration entries the calling agent is the parent of', response: { 200: Type.Object({ items: Type.Array(Registration) }), ...errorResponses } },
      },
      async (req) => {
        const { principal, tenant } = req.rampart;
        const agent = await runtime.stores.agents.get(tenant!, principal!.id);
        const entries = await runtime.stores.registrations.byParents(tenant!, parentsOf(principal!.id, agent));
        return { items: entries.map(registrationView) };
      },
    );

    app.post<{ Body: Static<typeof SvidsBody> }>(
      '/v1/pki/agent/svids',
      {
        config: { authz: { action: 'pki:agent-sync', resource: pkiCollection } },
        schema: { summary: 'SVIDs for registration entries the calling agent is the parent of, all or none', body: SvidsBody, response: { 200: Svids, ...errorResponses } },
      },
      async (req) => {
        const ctx = req.rampart;
        const principal = ctx.principal!;
        const tenant = ctx.tenant!;
        const agent = await runtime.stores.agents.get(tenant, principal.id);
        const granted: { entry: RegistrationEntry; csr: string }[] = [];
        for (const { registration_id: id, csr } of req.body.requests) {
          const entry = await runtime.stores.registrations.get(tenant, id);
          const parent = entry && actingParent(entry, principal.id, agent);
          if (!entry || parent === undefined) throw new PkiError('pki.registration_not_found', `no registration entry ${id} has this agent as its parent`);
          // Cedar decides whether the caller may act for this parent: the seed policy lets an
          // agent act only for itself, so it obtains exactly what is registered under it.
          ctx.action = 'pki:sign-for-workload';
          ctx.resource = { type: 'Rampart::SpiffeId', id: parseSpiffeId(parent).id };
          await authorizeRequest(runtime, req, { principal, tenant, action: 'pki:sign-for-workload', resource: ctx.resource });
          granted.push({ entry, csr });
        }
        const signed: { entry: RegistrationEntry; svid: SignedSvid }[] = [];
        for (const { entry, csr } of granted) {
          const ttlMs = entry.ttlMs === null ? resolveSvidTtl(undefined, runtime.config.pkiMaxTtlMs) : Math.min(entry.ttlMs, runtime.config.pkiMaxTtlMs);
          signed.push({ entry, svid: await sign(tenant, entry.spiffeId as SpiffeId, csr, ttlMs, entry.dnsNames) });
        }
        await ctx.transact(200, async (s) => {
          for (const { svid } of signed) await s.certificates.insert(svid.record);
          return {
            result: undefined,
            details: {
              registration_ids: signed.map((x) => x.entry.id),
              spiffe_ids: signed.map((x) => x.entry.spiffeId),
              serial_numbers: signed.map((x) => x.svid.record.serialNumber),
            },
          };
        });
        return { svids: signed.map(({ entry, svid }) => ({ registration_id: entry.id, ...svidView(entry.spiffeId, svid) })) };
      },
    );
  };
