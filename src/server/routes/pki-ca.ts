import 'reflect-metadata';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import * as x509 from '@peculiar/x509';
import type { EntityRef } from '../../audit/event.js';
import { parseDuration } from '../../core/duration.js';
import { AuthzError, RequestError } from '../../core/errors.js';
import { DEFAULT_TENANT } from '../../core/ids.js';
import type { CaHierarchy } from '../../pki/hierarchy.js';
import { MIN_PASSPHRASE_LENGTH, exportRootKey, importRootKey, removeRootKey } from '../../pki/root-key.js';
import { activatePrepared, DEFAULT_PROPAGATION_DELAY_MS, prepareRotation } from '../../pki/rotation.js';
import { installSignedIntermediate, requestIntermediate } from '../../pki/rotation-external.js';
import type { CaRecord } from '../../pki/store.js';
import type { Runtime } from '../../runtime.js';
import { errorResponses } from './schemas.js';

/** The CA hierarchy is shared by every tenant: only the operator tenant may address it. */
function operatorCaResource(_params: Record<string, string>, tenant: string): EntityRef {
  if (tenant !== DEFAULT_TENANT) throw new AuthzError('authz.denied', 'access denied');
  return { type: 'Rampart::Collection', id: `${DEFAULT_TENANT}/pki-ca` };
}

const CaInfo = Type.Object({
  id: Type.String(),
  role: Type.Union([Type.Literal('root'), Type.Literal('intermediate'), Type.Literal('cross')]),
  status: Type.Union([Type.Literal('requested'), Type.Literal('prepared'), Type.Literal('active'), Type.Literal('previous'), Type.Literal('retired')]),
  subject: Type.String(),
  issuer: Type.String(),
  key_id: Type.String({ description: 'hex subject key identifier' }),
  not_after: Type.String(),
  key_online: Type.Boolean({ description: 'whether the private key is on the server' }),
  activate_after: Type.Union([Type.String(), Type.Null()]),
});
const CaStatus = Type.Object({ bundle_sequence: Type.Integer(), authorities: Type.Array(CaInfo) });
const RotateBody = Type.Object(
  {
    target: Type.Optional(Type.Union([Type.Literal('intermediate'), Type.Literal('root')], { description: 'default intermediate' })),
    propagation_delay: Type.Optional(Type.String({ maxLength: 32, description: 'how long the new intermediate is only published before it signs (default 10m; "0s" activates at once)' })),
  },
  { additionalProperties: false },
);
const IntermediateCsr = Type.Object({ id: Type.String(), csr: Type.String({ description: 'PEM PKCS #10 request of the new intermediate' }) });
const SetSignedBody = Type.Object(
  {
    certificate: Type.String({ maxLength: 16_384, description: 'PEM intermediate certificate signed by the root' }),
    root: Type.Optional(Type.String({ maxLength: 16_384, description: 'PEM of the signing root when the server does not have it yet; it becomes a trusted root' })),
    propagation_delay: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: false },
);
const RootExportBody = Type.Object({ passphrase: Type.String({ minLength: 1, maxLength: 1024, description: `at least ${MIN_PASSPHRASE_LENGTH} characters` }) }, { additionalProperties: false });
const RootExported = Type.Object({ root_id: Type.String(), certificate: Type.String(), encrypted_key: Type.String({ description: 'PEM ENCRYPTED PRIVATE KEY (PKCS #8, AES-256-CBC)' }) });
const RootRemoveBody = Type.Object({ root_id: Type.String({ pattern: '^ca_[A-Za-z0-9_-]{1,64}$', description: 'the root_id the export returned' }) }, { additionalProperties: false });
const RootImportBody = Type.Object({ encrypted_key: Type.String({ maxLength: 16_384 }), passphrase: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });
const RootInfo = Type.Object({ root_id: Type.String(), key_online: Type.Boolean() });

const keyIdOf = (cert: x509.X509Certificate): string => cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId.toLowerCase() ?? '';

function caInfo(r: CaRecord): Static<typeof CaInfo> {
  const base = { id: r.id, role: r.role, status: r.status, not_after: r.notAfter, key_online: r.privateKey !== null, activate_after: r.activateAfter };
  if (r.status === 'requested') {
    // Its certificate is still out for signing; the record holds the CSR.
    const csr = new x509.Pkcs10CertificateRequest(r.certificatePem);
    return { ...base, subject: csr.subject, issuer: '', key_id: '' };
  }
  const cert = new x509.X509Certificate(r.certificatePem);
  return { ...base, subject: cert.subject, issuer: cert.issuer, key_id: keyIdOf(cert) };
}

async function caStatus(runtime: Runtime, ca: CaHierarchy): Promise<Static<typeof CaStatus>> {
  const records = [...(await runtime.stores.ca.unretired()), ...(await runtime.stores.ca.withStatus('requested'))];
  return { bundle_sequence: ca.sequence, authorities: records.map(caInfo) };
}

/**
 * The operator's CA management: status, rotation (prepare → activate, see pki/rotation.ts) and
 * taking the root key offline (pki/root-key.ts). Every route is authenticated, authorized in the
 * operator tenant only, and audited; a secret (passphrase, key) never enters an audit event.
 */
export const caRotationRoutes =
  (runtime: Runtime, currentCa: (force?: boolean) => Promise<CaHierarchy>): FastifyPluginAsync =>
  async (app) => {
    app.get(
      '/v1/pki/ca/status',
      {
        config: { authz: { action: 'pki:ca-read', resource: operatorCaResource } },
        schema: { summary: 'The CA hierarchy: every unretired root, cross-certificate and intermediate with its rotation state (operator)', response: { 200: CaStatus, ...errorResponses } },
      },
      async () => {
        return caStatus(runtime, await currentCa());
      },
    );

    app.post<{ Body: Static<typeof RotateBody> }>(
      '/v1/pki/ca/rotate',
      {
        config: { authz: { action: 'pki:ca-rotate', resource: operatorCaResource } },
        schema: {
          summary: 'Prepare a CA rotation: publish a new intermediate (under a new cross-signed root with target=root) that signs only after the propagation delay (operator)',
          body: RotateBody,
          response: { 200: CaStatus, ...errorResponses },
        },
      },
      async (req) => {
        const target = req.body.target ?? 'intermediate';
        const delay = req.body.propagation_delay === undefined ? DEFAULT_PROPAGATION_DELAY_MS : parseDuration(req.body.propagation_delay);
        if (delay === undefined) throw new RequestError('request.invalid', 'propagation_delay must be a duration such as "10m" or "0s"');
        await req.rampart.transact(200, async (s) => {
          const r = await prepareRotation(s, runtime.barrier, runtime.clock, { target, propagationDelayMs: delay });
          return {
            result: r,
            details: { target, intermediate: r.intermediate.id, root: r.root?.id ?? null, cross: r.cross?.id ?? null, activate_after: r.intermediate.activateAfter },
          };
        });
        return caStatus(runtime, await currentCa(true));
      },
    );

    app.post(
      '/v1/pki/ca/activate',
      {
        config: { authz: { action: 'pki:ca-rotate', resource: operatorCaResource } },
        schema: { summary: 'Activate the prepared intermediate now instead of at the end of its propagation delay (operator)', response: { 200: CaStatus, ...errorResponses } },
      },
      async (req) => {
        await req.rampart.transact(200, async (s) => {
          const r = await activatePrepared(s, runtime.clock);
          return { result: r, details: { activated: r.id } };
        });
        return caStatus(runtime, await currentCa(true));
      },
    );

    app.post(
      '/v1/pki/ca/intermediate/csr',
      {
        config: { authz: { action: 'pki:ca-rotate', resource: operatorCaResource } },
        schema: { summary: "Create the next intermediate's key and return its CSR, for a root held outside the server to sign (operator)", response: { 200: IntermediateCsr, ...errorResponses } },
      },
      async (req) => {
        const request = await req.rampart.transact(200, async (s) => {
          const r = await requestIntermediate(s, runtime.barrier, runtime.clock);
          return { result: r, details: { intermediate: r.record.id } };
        });
        return { id: request.record.id, csr: request.csrPem };
      },
    );

    app.post<{ Body: Static<typeof SetSignedBody> }>(
      '/v1/pki/ca/intermediate/set-signed',
      {
        config: { authz: { action: 'pki:ca-rotate', resource: operatorCaResource } },
        schema: {
          summary: 'Install the externally signed intermediate as prepared; it signs after the propagation delay (operator)',
          body: SetSignedBody,
          response: { 200: CaStatus, ...errorResponses },
        },
      },
      async (req) => {
        const delay = req.body.propagation_delay === undefined ? DEFAULT_PROPAGATION_DELAY_MS : parseDuration(req.body.propagation_delay);
        if (delay === undefined) throw new RequestError('request.invalid', 'propagation_delay must be a duration such as "10m" or "0s"');
        await req.rampart.transact(200, async (s) => {
          const r = await installSignedIntermediate(s, runtime.barrier, runtime.clock, {
            certificatePem: req.body.certificate,
            ...(req.body.root === undefined ? {} : { rootPem: req.body.root }),
            propagationDelayMs: delay,
          });
          return { result: r, details: { intermediate: r.id, activate_after: r.activateAfter, external_root: req.body.root !== undefined } };
        });
        return caStatus(runtime, await currentCa(true));
      },
    );

    app.post<{ Body: Static<typeof RootExportBody> }>(
      '/v1/pki/ca/root/export',
      {
        config: { authz: { action: 'pki:ca-root', resource: operatorCaResource } },
        schema: { summary: 'Export the root key encrypted under a passphrase (PKCS #8, AES-256-CBC) so it can be kept offline (operator)', body: RootExportBody, response: { 200: RootExported, ...errorResponses } },
      },
      async (req) => {
        const exported = await req.rampart.transact(200, async (s) => {
          const r = await exportRootKey(s, runtime.barrier, req.body.passphrase);
          return { result: r, details: { root: r.root.id } };
        });
        return { root_id: exported.root.id, certificate: `${exported.root.certificatePem}\n`, encrypted_key: exported.encryptedKeyPem };
      },
    );

    app.post<{ Body: Static<typeof RootRemoveBody> }>(
      '/v1/pki/ca/root/remove',
      {
        config: { authz: { action: 'pki:ca-root', resource: operatorCaResource } },
        schema: { summary: 'Delete the root key from the server; the root stays trusted and only the intermediate key stays online (operator)', body: RootRemoveBody, response: { 200: RootInfo, ...errorResponses } },
      },
      async (req) => {
        const root = await req.rampart.transact(200, async (s) => {
          const r = await removeRootKey(s, req.body.root_id);
          return { result: r, details: { root: r.id, key_online: false } };
        });
        return { root_id: root.id, key_online: false };
      },
    );

    app.post<{ Body: Static<typeof RootImportBody> }>(
      '/v1/pki/ca/root/import',
      {
        config: { authz: { action: 'pki:ca-root', resource: operatorCaResource } },
        schema: { summary: 'Bring an exported root key back online (for a rotation); it must match an active root (operator)', body: RootImportBody, response: { 200: RootInfo, ...errorResponses } },
      },
      async (req) => {
        const root = await req.rampart.transact(200, async (s) => {
          const r = await importRootKey(s, runtime.barrier, req.body.encrypted_key, req.body.passphrase);
          return { result: r, details: { root: r.id, key_online: true } };
        });
        return { root_id: root.id, key_online: true };
      },
    );
  };
