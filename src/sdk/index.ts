/**
 * Public entry point of `rampart/sdk`: the API client and the types of what it sends and returns.
 * Named exports only, so the package's public surface is exactly this list.
 *
 * @example
 * ```ts
 * import { RampartClient, RampartApiError } from 'rampart/sdk';
 * ```
 */
export { RampartApiError, RampartClient, RampartTransportError } from './client.js';
export { watchX509Svid } from './workload-api.js';
export type { WatchOptions, X509SvidUpdate, X509SvidWatch } from './workload-api.js';
export {
  diffPolicyVersions,
  getEntities,
  getPolicyVersion,
  listPolicyStores,
  listPolicyVersions,
  pushPolicies,
  putEntities,
  reseedRampartPolicies,
  rollbackPolicies,
} from './policies.js';
export type { CedarEntity, PolicyPush, PolicyStoreInfo, PolicyVersion, PolicyVersionDetail } from './policies.js';
export { verifyEventInclusion } from './audit-proofs.js';
export type { ConsistencyProof, EventInclusionCheck, InclusionProof, VerifiedInclusion } from './audit-proofs.js';
export { createAuthorizer } from './authorizer.js';
export type { AuthorizerOptions, LocalAuthorizer, PolicyBundle } from './authorizer.js';
export type { CheckRequest, Decision } from '../authz/decisions.js';
export type {
  AuditEvent,
  AuditEventItem,
  AuditEventPage,
  AuditEventQuery,
  CreatedToken,
  CreateTokenRequest,
  HealthStatus,
  LegalHold,
  Page,
  PageOptions,
  RampartClientOptions,
  RequestOptions,
  RevocationResult,
  RevokeCertificateRequest,
  SignCertificateRequest,
  SignedCertificate,
  Tenant,
  TokenInfo,
} from './client.js';
export { certificatesOf, spiffeIdOf, SvidError, verifySvid } from './svid.js';
export type { CertificateInput, VerifiedSvid, VerifySvidOptions } from './svid.js';
export { createMtlsAgent, createMtlsServer, mtlsPeer } from './mtls.js';
export type { MtlsAgentOptions, MtlsOptions, MtlsServerOptions, RevocationPolicy } from './mtls.js';
export { createMtlsDispatcher } from './mtls-undici.js';
export type { MtlsDispatcherOptions } from './mtls-undici.js';
export { createSvidSource, keyMatchesCertificate, watchSvidFiles } from './svid-source.js';
export type { FileSvidSource, PushSvidSource, SvidFiles, SvidMaterial, SvidSource } from './svid-source.js';
export { CrlCache } from './crl-cache.js';
export type { CrlCacheOptions, CrlFetcher } from './crl-cache.js';
export { OcspCache } from './ocsp-cache.js';
export type { OcspCacheOptions, OcspFetcher } from './ocsp-cache.js';
export { activateCa, exportRootKey, getCaStatus, importRootKey, removeRootKey, requestIntermediateCsr, rotateCa, setSignedIntermediate } from './ca.js';
export type { CaAuthority, CaStatus, ExportedRootKey, RotateCaRequest, SetSignedIntermediateRequest } from './ca.js';
export { watchSecret } from './secret-watch.js';
export type { RotationDue, SecretTarget, SecretUpdate, WatchSecretOptions } from './secret-watch.js';
export { EventStreamParser } from './event-stream.js';
export type { StreamEvent } from './event-stream.js';
export { controlPlaneOf, RevocationFeed } from './revocation-feed.js';
export type { ControlPlane, FeedChange, RevocationFeedOptions, RevocationNotices } from './revocation-feed.js';
