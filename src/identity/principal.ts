/**
 * Who is calling. A principal always has a home tenant; it may address another tenant's data
 * only where that tenant's policies permit it (see `src/authz/seed-policies.ts`).
 */
export interface Principal {
  /** Cedar entity type of the principal. */
  readonly type: 'Rampart::Token' | 'Rampart::Workload';
  /** Token accessor, or the workload's SPIFFE ID. Never a secret. */
  readonly id: string;
  readonly tenant: string;
  /** Role names; each becomes a `Rampart::Role` parent of the principal entity. */
  readonly roles: readonly string[];
  /** `attestation`: a node agent proving itself with a join token or Kubernetes token (docs/pki.md). */
  readonly authMethod: 'token' | 'mtls' | 'attestation';
  readonly displayName: string;
}
