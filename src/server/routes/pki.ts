import 'reflect-metadata';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { PkiError, RequestError } from '../../core/errors.js';
import { requireTenant } from '../../identity/tenants.js';
import { BUNDLE_REFRESH_HINT_SECONDS, BundleRenderer } from '../../pki/bundle.js';
import type { CertificateAuthority } from '../../pki/ca.js';
import { CrlPublisher } from '../../pki/crl.js';
import { issuerKeyId } from '../../pki/issuer.js';
import { issuerOfOcspRequest, OCSP_VALIDITY_MS, OcspResponder } from '../../pki/ocsp.js';
import { revokeCertificates } from '../../pki/revocation.js';
import { parseSpiffeId } from '../../pki/spiffe.js';
import { REVOCATION_REASONS } from '../../pki/store.js';
import { resolveSvidIdentity, resolveSvidTtl, signSvidFromCsr } from '../../pki/svid-signing.js';
import { readSvidRequest } from '../../pki/svid-request.js';
import type { Runtime } from '../../runtime.js';
import { authorizeRequest } from '../authorize.js';
import { caRotationRoutes } from './pki-ca.js';
import { errorResponses, problemResponse } from './schemas.js';

const SignBody = Type.Object(
  {
    csr: Type.String({ maxLength: 65_536, description: 'PEM PKCS #10 request: its key, and its URI SAN as the SPIFFE ID when spiffe_id is absent; a request for a CA, several URIs or names not granted is refused' }),
    ttl: Type.Optional(Type.String({ maxLength: 32, description: 'e.g. "10m", "1h", "3600" (default 1h, at most the server maximum, 24h by default)' })),
    spiffe_id: Type.Optional(
      Type.String({ maxLength: 2048, description: "SPIFFE ID to issue, in the tenant's trust domain; defaults to the CSR's URI SAN, then to a calling workload's own" }),
    ),
  },
  { additionalProperties: false },
);
const SignedCertificate = Type.Object({
  certificate: Type.String({ description: 'PEM X.509-SVID' }),
  issuing_ca: Type.String({ description: 'PEM of the intermediate that signed it' }),
  ca_chain: Type.Array(Type.String(), { description: 'PEM certificates from the issuing CA up to the root' }),
  serial_number: Type.String({ description: 'lowercase hex' }),
  expiration: Type.Integer({ description: 'notAfter, Unix seconds' }),
  spiffe_id: Type.String(),
});
const RevokeBody = Type.Object(
  {
    serial_number: Type.Optional(Type.String({ pattern: '^[0-9A-Fa-f:]{1,64}$', description: 'hex, colons allowed' })),
    spiffe_id: Type.Optional(Type.String({ maxLength: 2048, description: 'revoke every unexpired certificate of this ID' })),
    reason: Type.Optional(Type.Union(REVOCATION_REASONS.map((r) => Type.Literal(r)), { description: 'RFC 5280 §5.3.1 reason (default unspecified)' })),
  },
  { additionalProperties: false },
);
const Revoked = Type.Object({
  serial_numbers: Type.Array(Type.String(), { description: 'every certificate the request names' }),
  newly_revoked: Type.Array(Type.String(), { description: 'those this request revoked; the others were revoked before' }),
  revocation_time: Type.Integer({ description: 'Unix seconds' }),
  revocation_time_rfc3339: Type.String(),
});
const IssuerParams = Type.Object({ issuer: Type.String({ pattern: '^[0-9a-f]{2,128}$', description: 'hex subject key identifier of the issuing CA' }) }, { additionalProperties: false });
const crlResponse = (description: string) => ({ description, content: { [CRL_CONTENT_TYPE]: { schema: { type: 'string', format: 'binary' } }, [PEM_CONTENT_TYPE]: { schema: { type: 'string' } } } });
const CrlQuery = Type.Object({ format: Type.Optional(Type.Union([Type.Literal('der'), Type.Literal('pem')])) }, { additionalProperties: false });

const pkiCollection = (_p: Record<string, string>, tenant: string) => ({ type: 'Rampart::Collection', id: `${tenant}/pki` });

const PEM_CONTENT_TYPE = 'application/x-pem-file';
const CRL_CONTENT_TYPE = 'application/pkix-crl';
const OCSP_REQUEST_CONTENT_TYPE = 'application/ocsp-request';
const OCSP_RESPONSE_CONTENT_TYPE = 'application/ocsp-response';
/** A DER OCSP request for a few certificates is a few hundred bytes. */
const OCSP_BODY_LIMIT = 16 * 1024;
const unixSeconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/**
 * The PKI API: `sign` and `revoke` go through the full request path (authenticated, authorized,
 * audited). The CRL, the OCSP responder and the CA bundle are public: relying parties that
 * validate an SVID have no Rampart credentials, everything these routes return is signed or is
 * a public certificate, and RFC 5280 §4.2.1.13 and RFC 6960 expect them to be fetched anonymously.
 * They are therefore not audited per request (they change nothing).
 */
export const pkiRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const ca = runtime.ca;
    const certificates = runtime.stores.certificates;
    /** Picks up rotations (made here, by the clock, or by another replica) before answering. */
    const currentCa = (force = false) => runtime.pkiSync.currentCa(force);
    // One CRL publisher and OCSP responder per issuing CA, created when first needed: after a
    // rotation the previous intermediate keeps answering for its own serials.
    const crls = new Map<string, CrlPublisher>();
    const responders = new Map<string, OcspResponder>();
    const crlsOf = (issuer: CertificateAuthority) => {
      const id = issuerKeyId(issuer);
      let publisher = crls.get(id);
      if (!publisher) {
        publisher = new CrlPublisher(issuer, certificates, runtime.clock, { bases: runtime.stores.crlBases, deltaUrl: `${runtime.config.advertiseAddr}/v1/pki/issuers/${id}/crl/delta` });
        crls.set(id, publisher);
      }
      return publisher;
    };
    const responderOf = (issuer: CertificateAuthority) => {
      const id = issuerKeyId(issuer);
      let responder = responders.get(id);
      if (!responder) {
        responder = new OcspResponder(issuer, (serial) => certificates.byIssuer(id, serial), runtime.clock, () => certificates.crlRevision(id));
        responders.set(id, responder);
      }
      return responder;
    };
    const bundles = new BundleRenderer();
    /** A CRL may be cached until its nextUpdate (RFC 5280 §5.1.2.5). */
    const sendCrl = async (reply: FastifyReply, issuer: CertificateAuthority, format: 'der' | 'pem' | undefined, kind: 'complete' | 'delta' = 'complete') => {
      const publisher = crlsOf(issuer);
      const crl = kind === 'delta' ? await publisher.delta() : await publisher.current();
      reply.header('cache-control', `public, max-age=${Math.max(0, Math.floor((crl.nextUpdate.getTime() - runtime.clock.now().getTime()) / 1000))}`);
      if (format === 'pem') return reply.type(PEM_CONTENT_TYPE).send(crl.pem);
      return reply.type(CRL_CONTENT_TYPE).send(Buffer.from(crl.der));
    };

    /** @throws PkiError `pki.issuer_not_found` when no issuing CA with that key id answers here */
    const issuerByKeyId = async (keyId: string) => {
      const issuer = (await currentCa()).issuers.find((i) => issuerKeyId(i) === keyId);
      if (!issuer) throw new PkiError('pki.issuer_not_found', `no issuing CA with key id ${keyId} answers here (it may have been retired)`);
      return issuer;
    };

    // Scoped to this plugin: only the OCSP routes read a raw body.
    app.addContentTypeParser(OCSP_REQUEST_CONTENT_TYPE, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    app.post<{ Body: Static<typeof SignBody> }>(
      '/v1/pki/sign',
      {
        config: { authz: { action: 'pki:sign-request', resource: pkiCollection } },
        schema: { summary: 'Sign a CSR into an X.509-SVID', body: SignBody, response: { 200: SignedCertificate, ...errorResponses } },
      },
      async (req) => {
        const ctx = req.rampart;
        const principal = ctx.principal!;
        const tenant = ctx.tenant!;
        const ownId = principal.type === 'Rampart::Workload' && principal.tenant === tenant ? principal.id : undefined;
        // Read first: without spiffe_id, the CSR's URI SAN is the identity asked for.
        const request = await readSvidRequest(req.body.csr);
        const { trustDomain } = await requireTenant(runtime.stores.tenants, tenant);
        const spiffeId = resolveSvidIdentity(request, trustDomain, {
          ...(req.body.spiffe_id === undefined ? {} : { explicit: req.body.spiffe_id }),
          ...(ownId === undefined ? {} : { fallback: ownId }),
        });
        // The decision the route's `pki:sign-request` could not make: it needs the body. The
        // audit event then names the identity asked for.
        ctx.action = 'pki:sign';
        ctx.resource = { type: 'Rampart::SpiffeId', id: spiffeId };
        await authorizeRequest(runtime, req, { principal, tenant, action: 'pki:sign', resource: ctx.resource });
        const ttlMs = resolveSvidTtl(req.body.ttl, runtime.config.pkiMaxTtlMs);
        const { intermediate: issuer } = await currentCa();
        const signed = await signSvidFromCsr(issuer, {
          tenant,
          spiffeId,
          request,
          ttlMs,
          clock: runtime.clock,
          advertiseAddr: runtime.config.advertiseAddr,
        });
        const { record } = signed;
        await ctx.transact(200, async (s) => {
          await s.certificates.insert(record);
          return { result: undefined, details: { serial_number: record.serialNumber, spiffe_id: spiffeId, not_after: record.notAfter } };
        });
        const caChain = ca.chainOf(issuer).map((c) => c.toString('pem'));
        return {
          certificate: `${record.certificatePem}\n`,
          issuing_ca: caChain[0]!,
          ca_chain: caChain,
          serial_number: record.serialNumber,
          expiration: unixSeconds(new Date(record.notAfter)),
          spiffe_id: spiffeId,
        };
      },
    );

    app.post<{ Body: Static<typeof RevokeBody> }>(
      '/v1/pki/revoke',
      {
        config: { authz: { action: 'pki:revoke', resource: pkiCollection } },
        schema: { summary: "Revoke a certificate by serial, or all of a SPIFFE ID's unexpired certificates", body: RevokeBody, response: { 200: Revoked, ...errorResponses } },
      },
      async (req) => {
        const ctx = req.rampart;
        const { serial_number: serialNumber, spiffe_id: spiffeId, reason = 'unspecified' } = req.body;
        if ((serialNumber === undefined) === (spiffeId === undefined)) {
          throw new RequestError('request.invalid', 'send exactly one of serial_number and spiffe_id');
        }
        const target = serialNumber !== undefined ? { serialNumber } : { spiffeId: parseSpiffeId(spiffeId!).id };
        const result = await ctx.transact(200, async (s) => {
          const r = await revokeCertificates(s.certificates, runtime.clock, ctx.tenant!, target, reason, s.pkiEvents);
          return { result: r, details: { serial_numbers: r.serialNumbers, newly_revoked: r.newlyRevoked, reason } };
        });
        // This replica's subscribers hear it now; the others' when their replica reads the log.
        await runtime.pkiSync.deliver();
        const at = new Date(result.revokedAt);
        return {
          serial_numbers: [...result.serialNumbers],
          newly_revoked: [...result.newlyRevoked],
          revocation_time: unixSeconds(at),
          revocation_time_rfc3339: result.revokedAt,
        };
      },
    );

    app.get<{ Querystring: Static<typeof CrlQuery> }>(
      '/v1/pki/crl',
      {
        config: { public: true },
        schema: {
          summary: 'The issuing CA\'s CRL (RFC 5280), DER or ?format=pem; public',
          security: [],
          querystring: CrlQuery,
          response: { 200: crlResponse('the CRL'), 400: problemResponse('invalid query'), 503: problemResponse('the store is unavailable') },
        },
      },
      async (req, reply) => sendCrl(reply, (await currentCa()).intermediate, req.query.format),
    );

    app.get<{ Querystring: Static<typeof CrlQuery> }>(
      '/v1/pki/crl/delta',
      {
        config: { public: true },
        schema: {
          summary: "The issuing CA's delta CRL (RFC 5280 §5.2.4): what was revoked since the complete CRL its Delta CRL Indicator names; DER or ?format=pem; public",
          security: [],
          querystring: CrlQuery,
          response: { 200: crlResponse('the delta CRL'), 400: problemResponse('invalid query'), 503: problemResponse('the store is unavailable') },
        },
      },
      async (req, reply) => sendCrl(reply, (await currentCa()).intermediate, req.query.format, 'delta'),
    );

    const answerOcsp = async (req: FastifyRequest, reply: FastifyReply, der: Uint8Array) => {
      const { issuers } = await currentCa();
      const answer = await responderOf(issuers.length === 1 ? issuers[0]! : issuerOfOcspRequest(issuers, der)).respond(der);
      if (answer.error) req.log.info({ code: answer.error.code, err: answer.error }, 'malformed OCSP request');
      // RFC 5019 §6.2: answers may be cached until their nextUpdate.
      if (!answer.error && req.method === 'GET') reply.header('cache-control', `public, max-age=${OCSP_VALIDITY_MS / 1000}, no-transform, must-revalidate`);
      return reply.type(OCSP_RESPONSE_CONTENT_TYPE).send(Buffer.from(answer.der));
    };
    const ocspResponse = { 200: { description: 'DER OCSPResponse, also for malformed requests (RFC 6960 §2.3)', content: { [OCSP_RESPONSE_CONTENT_TYPE]: { schema: { type: 'string', format: 'binary' } } } }, 415: problemResponse('not application/ocsp-request') };

    app.post(
      '/v1/pki/ocsp',
      {
        config: { public: true },
        bodyLimit: OCSP_BODY_LIMIT,
        schema: { summary: 'OCSP responder (RFC 6960 Appendix A.1, POST); public', security: [], response: ocspResponse },
      },
      async (req, reply) => {
        if (!Buffer.isBuffer(req.body)) throw new RequestError('request.unsupported_media_type', `send Content-Type: ${OCSP_REQUEST_CONTENT_TYPE}`);
        return answerOcsp(req, reply, req.body);
      },
    );

    app.get<{ Params: { '*': string } }>(
      '/v1/pki/ocsp/*',
      {
        config: { public: true },
        schema: { summary: 'OCSP responder (RFC 6960 Appendix A.1, GET with the base64 request in the path); public', security: [], response: ocspResponse },
      },
      async (req, reply) => {
        // The path comes from the network: base64 or base64url, possibly percent-encoded by the client.
        let text = req.params['*'];
        try {
          text = decodeURIComponent(text);
        } catch {
          text = '';
        }
        const valid = text.length > 0 && text.length <= OCSP_BODY_LIMIT && /^[A-Za-z0-9+/_-]+={0,2}$/.test(text);
        const der = valid ? Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64') : new Uint8Array(0);
        return answerOcsp(req, reply, der);
      },
    );

    app.get(
      '/v1/pki/ca/pem',
      {
        config: { public: true },
        schema: { summary: 'Trust bundle: every trusted CA (roots, cross-certificates, prepared, active and previous intermediates), PEM; public', security: [], response: { 200: { description: 'PEM certificates', content: { [PEM_CONTENT_TYPE]: { schema: { type: 'string' } } } } } },
      },
      async (_req, reply) => {
        const { trusted, sequence } = await currentCa();
        return reply.type(PEM_CONTENT_TYPE).header('cache-control', `public, max-age=${BUNDLE_REFRESH_HINT_SECONDS}`).send(bundles.render(trusted, sequence).pem);
      },
    );

    app.get<{ Params: { issuer: string }; Querystring: Static<typeof CrlQuery> }>(
      '/v1/pki/issuers/:issuer/crl',
      {
        config: { public: true },
        schema: {
          summary: "The CRL of one issuing CA by its key id (the SVID's CRL distribution point), also during a rotation overlap; public",
          security: [],
          params: IssuerParams,
          querystring: CrlQuery,
          response: { 200: crlResponse('the CRL'), ...errorResponses },
        },
      },
      async (req, reply) => sendCrl(reply, await issuerByKeyId(req.params.issuer), req.query.format),
    );

    app.get<{ Params: { issuer: string }; Querystring: Static<typeof CrlQuery> }>(
      '/v1/pki/issuers/:issuer/crl/delta',
      {
        config: { public: true },
        schema: {
          summary: "The delta CRL of one issuing CA by its key id, where its complete CRL's Freshest CRL extension points (RFC 5280 §5.2.6); public",
          security: [],
          params: IssuerParams,
          querystring: CrlQuery,
          response: { 200: crlResponse('the delta CRL'), ...errorResponses },
        },
      },
      async (req, reply) => sendCrl(reply, await issuerByKeyId(req.params.issuer), req.query.format, 'delta'),
    );

    app.get(
      '/v1/pki/bundle.jwks',
      {
        config: { public: true },
        schema: {
          summary: 'Trust bundle in the SPIFFE bundle format (JWK Set, use x509-svid, spiffe_sequence, spiffe_refresh_hint); public',
          security: [],
          response: { 200: { description: 'SPIFFE bundle', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      async (_req, reply) => {
        const { trusted, sequence } = await currentCa();
        return reply.type('application/json').header('cache-control', `public, max-age=${BUNDLE_REFRESH_HINT_SECONDS}`).send(JSON.stringify(bundles.render(trusted, sequence).jwks));
      },
    );

    app.register(caRotationRoutes(runtime, currentCa));
  };
