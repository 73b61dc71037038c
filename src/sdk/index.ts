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
