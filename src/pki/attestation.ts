/**
 * Node attestation and what it entitles an agent to. An agent proves what it runs on once (a
 * join token, or a Kubernetes token: src/pki/join-token.ts, src/pki/k8s-psat.ts), receives its
 * own SVID, and from then on authenticates with that SVID over mTLS. It may obtain SVIDs for the
 * registration entries it is the parent of: those naming its SPIFFE ID, and those naming a node
 * selector it proved when it attested (SPIRE's node aliasing, simplified to one selector).
 */
import type { AttestedAgent } from './attestation-store.js';
import type { RegistrationEntry } from './registration-store.js';
import type { SpiffeId } from './spiffe.js';
import { svidIdentityFor } from './svid-signing.js';

/** `spiffe://<td>/rampart/agent/join_token/<token id>`, SPIRE's join-token agent path, unless the token names an ID. */
export function joinTokenAgentId(trustDomain: string, tokenId: string, requested: string | null): SpiffeId {
  return svidIdentityFor(requested ?? `spiffe://${trustDomain}/rampart/agent/join_token/${tokenId}`, trustDomain);
}

/** The parents an agent answers to: its own SPIFFE ID and each node selector it attested with. */
export function parentsOf(agentId: string, agent: AttestedAgent | undefined): string[] {
  return [agentId, ...(agent?.selectors ?? [])];
}

/**
 * The SPIFFE ID that stands as the entry's parent in the authorization decision
 * (`pki:sign-for-workload` on `Rampart::SpiffeId::"<parent>"`): the entry's parent ID as written,
 * or the agent itself when the parent is a node selector the agent attested with. Undefined when
 * the entry's parent is a selector the agent does not hold: the entry is not the agent's.
 */
export function actingParent(entry: RegistrationEntry, agentId: string, agent: AttestedAgent | undefined): string | undefined {
  if (entry.parent.startsWith('spiffe://')) return entry.parent;
  return agent?.selectors.includes(entry.parent) ? agentId : undefined;
}
