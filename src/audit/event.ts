import { serializeBounded } from './event-bounds.js';
import { classifyEvent } from './ocsf.js';
import type { SealedSubject } from './subjects.js';

/**
 * The structured audit event: one per request that reaches authentication, whatever its outcome.
 *
 * Its serialized form is exactly what the Merkle leaf covers (RFC 6962 §2.1: the leaf hash is
 * computed over these bytes), so the field order is fixed by {@link serializeEvent} and a stored
 * payload is never re-serialized. Never put a secret or a token in an event: record an accessor,
 * an id or an HMAC instead. An event never exceeds the log's 65,535-byte entry limit: an oversized
 * one is shortened, and marked so, by ./event-bounds.ts.
 */
export const AUDIT_SCHEMA_VERSION = 1;

export type AuditOutcome = 'success' | 'denied' | 'invalid' | 'failed' | 'unauthenticated';

export interface EntityRef {
  readonly type: string;
  readonly id: string;
}

export interface AuditEvent {
  readonly schema_version: typeof AUDIT_SCHEMA_VERSION;
  /** RFC 3339 UTC time the server decided the outcome. */
  readonly time: string;
  /** The tenant whose data the request addressed (the target tenant, not necessarily the principal's). */
  readonly tenant: string;
  readonly request_id: string;
  readonly source_ip: string;
  readonly principal: (EntityRef & { readonly tenant: string; readonly auth_method: 'token' | 'mtls' | 'attestation' }) | null;
  readonly action: string | null;
  readonly resource: EntityRef | null;
  readonly outcome: AuditOutcome;
  /** The authorization decision and the policies that determined it (kept from the caller). */
  readonly authorization: {
    readonly decision: 'allow' | 'deny';
    readonly policies: readonly string[];
    readonly policy_version: number | null;
  } | null;
  readonly error_code: string | null;
  /** Null for state changes the server makes on its own (first-start bootstrap). */
  readonly http: { readonly method: string; readonly route: string; readonly status: number } | null;
  /** Personal data of a data subject, sealed under that subject's key (see subjects.ts). */
  readonly subject?: SealedSubject;
  /** Operation facts that are not secret (the created tenant's name, a token's accessor, …). */
  readonly details?: Readonly<Record<string, string | number | boolean | null | readonly string[]>>;
}

export function serializeEvent(event: AuditEvent): string {
  const ordered: Record<string, unknown> = {
    schema_version: event.schema_version,
    // Derived, so no producer can get the classification wrong or leave it out.
    ocsf: classifyEvent(event.http?.method ?? null, event.outcome, event.action),
    time: event.time,
    tenant: event.tenant,
    request_id: event.request_id,
    source_ip: event.source_ip,
    principal: event.principal,
    action: event.action,
    resource: event.resource,
    outcome: event.outcome,
    authorization: event.authorization,
    error_code: event.error_code,
    http: event.http,
  };
  if (event.details !== undefined) ordered.details = event.details;
  if (event.subject !== undefined) ordered.subject = event.subject;
  return serializeBounded(ordered);
}
