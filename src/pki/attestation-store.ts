/** The storage port for attested node agents (src/pki/attestation.ts). */
export type AttestationMethod = 'join_token' | 'k8s_psat';

export interface AttestedAgent {
  readonly tenant: string;
  readonly spiffeId: string;
  readonly method: AttestationMethod;
  /** The node selectors the agent proved when it last attested, e.g. `k8s:cluster:prod`. */
  readonly selectors: readonly string[];
  readonly attestedAt: string;
}

export interface AgentStore {
  /** Records an attestation; a re-attestation of the same agent replaces its selectors. */
  upsert(agent: AttestedAgent): Promise<void>;
  /** The tenant's agent with that SPIFFE ID; undefined when it never attested. */
  get(tenant: string, spiffeId: string): Promise<AttestedAgent | undefined>;
}
