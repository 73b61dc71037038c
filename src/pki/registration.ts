/**
 * Registration entries: which SPIFFE ID a workload receives, given the evidence (selectors) that
 * identifies it and the agent (parent) that vouches for it. The model is SPIRE's registration
 * entry (spiffe.io "Registering workloads"): an entry names a SPIFFE ID, a parent ID and
 * selectors; an agent obtains SVIDs only for entries whose parent it is.
 *
 * Here a parent is either an agent's SPIFFE ID or one node selector (`k8s_psat:cluster:prod`),
 * which then covers every agent that attested with that selector, as SPIRE's node aliases do.
 */
import { PkiError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { randomId } from '../core/ids.js';
import { svidIdentityFor } from './svid-signing.js';
import type { RegistrationEntry } from './registration-store.js';

/** SPIRE's selector form `type:value`; the value may itself contain colons (`k8s:sa:pay/api`). */
const SELECTOR_TYPE = /^[a-z0-9_]{1,32}$/;
/** Printable ASCII without spaces: selectors are compared as exact strings. */
const SELECTOR_VALUE = /^[\x21-\x7e]{1,255}$/;
const DNS_NAME = /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;
const MIN_ENTRY_TTL_MS = 60_000;
export const MAX_SELECTORS = 32;

/**
 * Checks `<type>:<value>` syntax and returns the selector unchanged.
 *
 * @throws PkiError `pki.selector_invalid`
 */
export function parseSelector(text: string): string {
  const colon = text.indexOf(':');
  const type = colon === -1 ? '' : text.slice(0, colon);
  const value = colon === -1 ? '' : text.slice(colon + 1);
  if (!SELECTOR_TYPE.test(type) || !SELECTOR_VALUE.test(value)) {
    throw new PkiError('pki.selector_invalid', `selector ${JSON.stringify(text.slice(0, 80))} is not <type>:<value> (type [a-z0-9_], value printable ASCII without spaces)`);
  }
  return text;
}

export interface NewRegistration {
  readonly tenant: string;
  readonly trustDomain: string;
  readonly spiffeId: string;
  readonly parent: string;
  readonly selectors: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ttl?: string;
  /** Longest TTL the server grants (config `pki_max_ttl`). */
  readonly maxTtlMs: number;
  readonly createdBy: string;
  readonly now: Date;
}

/**
 * Validates a new entry: its SPIFFE ID and a SPIFFE-ID parent lie in the tenant's trust domain
 * (an entry can never make an agent mint another tenant's identities), selectors are well formed,
 * DNS names are host names, and the TTL lies within [1m, max].
 *
 * @throws PkiError `pki.spiffe_id_invalid`, `pki.spiffe_id_forbidden`, `pki.selector_invalid`, `pki.ttl_invalid`
 */
export function newRegistrationEntry(input: NewRegistration): RegistrationEntry {
  const spiffeId = svidIdentityFor(input.spiffeId, input.trustDomain);
  const parent = input.parent.startsWith('spiffe://') ? svidIdentityFor(input.parent, input.trustDomain) : parseSelector(input.parent);
  if (parent === spiffeId) throw new PkiError('pki.spiffe_id_invalid', 'an entry cannot be its own parent');
  if (input.selectors.length === 0 || input.selectors.length > MAX_SELECTORS) {
    throw new PkiError('pki.selector_invalid', `an entry needs 1 to ${MAX_SELECTORS} selectors`);
  }
  const selectors = [...new Set(input.selectors.map(parseSelector))].sort();
  const dnsNames = [...new Set(input.dnsNames ?? [])];
  for (const name of dnsNames) {
    if (name.length > 253 || !DNS_NAME.test(name)) throw new PkiError('pki.spiffe_id_invalid', `not a valid DNS name: ${JSON.stringify(name.slice(0, 80))}`);
  }
  let ttlMs: number | null = null;
  if (input.ttl !== undefined) {
    ttlMs = parseDuration(input.ttl) ?? null;
    if (ttlMs === null || ttlMs < MIN_ENTRY_TTL_MS || ttlMs > input.maxTtlMs) {
      throw new PkiError('pki.ttl_invalid', `ttl must be a duration between 1m and ${input.maxTtlMs / 1000}s`, { details: { max_ttl_seconds: input.maxTtlMs / 1000 } });
    }
  }
  return {
    id: `reg_${randomId()}`,
    tenant: input.tenant,
    spiffeId,
    parent,
    selectors,
    dnsNames,
    ttlMs,
    createdAt: input.now.toISOString(),
    createdBy: input.createdBy,
  };
}

/** The API form of an entry. */
export function registrationView(e: RegistrationEntry) {
  return {
    id: e.id,
    spiffe_id: e.spiffeId,
    parent: e.parent,
    selectors: [...e.selectors],
    dns_names: [...e.dnsNames],
    ttl_seconds: e.ttlMs === null ? null : e.ttlMs / 1000,
    created_at: e.createdAt,
  };
}
