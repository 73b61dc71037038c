import type { FastifyRequest } from 'fastify';
import type { EntityRef } from '../audit/event.js';
import type { AuthzDecision } from '../authz/authorizer.js';
import type { Principal } from '../identity/principal.js';
import type { TokenRecord } from '../identity/store.js';
import type { Stores } from '../store/stores.js';

/** Details recorded in the audit event of a successful operation (never a secret). */
export type AuditDetails = Record<string, string | number | boolean | null | readonly string[]>;

export interface TransactResult<T> {
  readonly result: T;
  /** The response status for the audit event when only the work knows it (Vault: 200 or 204). */
  readonly status?: number;
  readonly details?: AuditDetails;
  /**
   * Personal data the event should record: sealed under the subject's key in the same
   * transaction, so it can later be erased without touching the log (crypto-shredding).
   */
  readonly subject?: { readonly id: string; readonly data: Record<string, string> };
}

/** What the hooks learn about a request, in the order the request path learns it. */
export interface RequestContext {
  readonly requestId: string;
  readonly startedAt: bigint;
  principal: Principal | undefined;
  /** The authenticating token's record, when a token authenticated the request. */
  token: TokenRecord | undefined;
  /** The tenant addressed: the principal's own, or the one named by X-Rampart-Tenant. */
  tenant: string | undefined;
  action: string | undefined;
  resource: EntityRef | undefined;
  errorCode: string | undefined;
  /** The authorization decision, recorded in the audit event (never shown to the caller). */
  decision: { readonly action: string; readonly decision: AuthzDecision } | undefined;
  /**
   * Details for the request's own audit event when a read-only route has facts to record (the
   * decision API's decision log): written by the audit hook, group-committed like any event.
   */
  auditDetails?: AuditDetails;
  /** Set once the request's audit event is durable; the audit hook then writes nothing more. */
  audited: boolean;
  /**
   * Runs a state change in one store transaction together with its success audit event, so that
   * a change is never committed without its event and an event never claims a rolled-back change.
   */
  transact<T>(status: number, work: (stores: Stores) => Promise<TransactResult<T>>): Promise<T>;
}

/** What a route declares about itself; the hooks do the rest. */
export interface RouteAuthz {
  /** Cedar action id within `Rampart::Action`, e.g. `token:create`. */
  readonly action: string;
  /** The Cedar resource, from the URL only: authorization runs before the body is read. */
  readonly resource: (params: Record<string, string>, tenant: string) => EntityRef;
  /**
   * For a route whose decisions depend on more than its URL template (the Vault API: the method,
   * the mounted engine, whether the record exists): runs after authentication, before the body
   * is read, and returns every decision the request needs, each authorized in turn in place of
   * `action` and `resource`.
   */
  readonly plan?: (req: FastifyRequest, tenant: string) => Promise<readonly { readonly action: string; readonly resource: EntityRef }[]>;
}

declare module 'fastify' {
  interface FastifyRequest {
    rampart: RequestContext;
  }
  interface FastifyContextConfig {
    /** Public routes (health, metrics, OpenAPI) skip authentication, authorization and audit. */
    public?: boolean;
    authz?: RouteAuthz;
    /** Vault-compatible routes (src/server/vault/): errors answer `{"errors":[…]}`, not problem+json. */
    vault?: boolean;
    /**
     * Logins and node attestation: no credential in the headers, because the evidence in the body
     * (an AppRole secret-id, a join token, a Kubernetes token) is the credential. The handler
     * verifies it, sets the principal it proves and asks Cedar; the audit hook records the
     * request either way.
     */
    credentialsInBody?: boolean;
  }
}
