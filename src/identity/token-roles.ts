import { SecretsError, TokenError } from '../core/errors.js';
import type { TokenRoleRecord } from './store.js';
import { MAX_TOKEN_TTL_MS, MAX_TOKEN_USES } from './tokens.js';

/**
 * Vault token roles (api-docs/auth/token, "Create/Update token role"; `tokenStoreRoleCreateUpdate`
 * and the role branch of `handleCreateCommon` in vault/token_store.go): a named recipe for tokens
 * made with `auth/token/create/<role>`. Offered: `allowed_policies`, `disallowed_policies`,
 * `orphan`, `renewable`, `path_suffix`, `token_period` (alias `period`), `token_explicit_max_ttl`
 * (alias `explicit_max_ttl`), `token_num_uses`, `token_no_default_policy`, `token_bound_cidrs`
 * (alias `bound_cidrs`) and `token_type` `service`/`default-service`. What Rampart cannot honour
 * is refused, never stored and ignored: glob policy lists, entity aliases, batch tokens, and
 * `token_ttl`/`token_max_ttl` (not fields of Vault's token roles either: the TTL comes with each
 * create call).
 */
export const ROLE_NAME_RE = /^\w(?:[\w.-]{0,126}\w)?$/;
/** Vault's `pathSuffixSanitize`, anchored, and bounded in length. */
const PATH_SUFFIX_RE = /^\w[\w.-]{1,126}\w$/;
const POLICY_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Fields of a role write, already read from the body; undefined keeps the stored value (update) or the default (create). */
export interface TokenRoleInput {
  readonly allowedPolicies?: readonly string[] | undefined;
  readonly disallowedPolicies?: readonly string[] | undefined;
  readonly orphan?: boolean | undefined;
  readonly renewable?: boolean | undefined;
  readonly pathSuffix?: string | undefined;
  readonly tokenPeriod?: number | undefined;
  readonly tokenExplicitMaxTtl?: number | undefined;
  readonly tokenNumUses?: number | undefined;
  readonly tokenNoDefaultPolicy?: boolean | undefined;
  /** Already validated (src/identity/cidr.ts `cidrListField`). */
  readonly tokenBoundCidrs?: readonly string[] | undefined;
}

/** Vault fields this build refuses, with the reason the caller is told. */
export const UNSUPPORTED_ROLE_FIELDS: Readonly<Record<string, string>> = {
  allowed_policies_glob: 'glob policy lists are not offered; list the policies in allowed_policies',
  disallowed_policies_glob: 'glob policy lists are not offered; list the policies in disallowed_policies',
  allowed_entity_aliases: 'entity aliases are not offered',
  token_ttl: 'Vault token roles take no token_ttl: send ttl with auth/token/create/<role>, cap it with token_explicit_max_ttl',
  token_max_ttl: 'Vault token roles take no token_max_ttl: use token_explicit_max_ttl',
};

function policyList(name: string, list: readonly string[]): string[] {
  for (const p of list) if (!POLICY_RE.test(p)) throw new SecretsError('secrets.invalid_request', `${name}: "${p}" is not a policy name`);
  return [...new Set(list.map((p) => p.trim()).filter((p) => p !== ''))].sort();
}

function seconds(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (v < 0 || v * 1000 > MAX_TOKEN_TTL_MS) throw new SecretsError('secrets.invalid_request', `${name}: at most ${MAX_TOKEN_TTL_MS / 3_600_000}h`);
  return v;
}

/** The role after a write: `existing` updated by `input`, or a new role with Vault's defaults. */
export function writeTokenRole(existing: TokenRoleRecord | undefined, tenant: string, name: string, input: TokenRoleInput, now: Date): TokenRoleRecord {
  if (!ROLE_NAME_RE.test(name)) throw new SecretsError('secrets.invalid_request', 'a role name is letters, digits, _, - and ., starting and ending with a letter or digit');
  const pathSuffix = input.pathSuffix ?? existing?.pathSuffix ?? '';
  if (pathSuffix !== '' && (!PATH_SUFFIX_RE.test(pathSuffix) || pathSuffix.includes('..'))) {
    throw new SecretsError('secrets.invalid_request', 'path_suffix: letters, digits, _, - and ., at least 3, no ".."');
  }
  const numUses = input.tokenNumUses ?? existing?.tokenNumUses ?? 0;
  if (!Number.isSafeInteger(numUses) || numUses < 0 || numUses > MAX_TOKEN_USES) {
    throw new TokenError('token.uses_invalid', `token_num_uses must be between 0 (unlimited) and ${MAX_TOKEN_USES}`);
  }
  return {
    tenant,
    name,
    allowedPolicies: policyList('allowed_policies', input.allowedPolicies ?? existing?.allowedPolicies ?? []).filter((p) => p !== 'root'),
    disallowedPolicies: policyList('disallowed_policies', input.disallowedPolicies ?? existing?.disallowedPolicies ?? []),
    orphan: input.orphan ?? existing?.orphan ?? false,
    renewable: input.renewable ?? existing?.renewable ?? true,
    pathSuffix,
    tokenPeriod: seconds('token_period', input.tokenPeriod, existing?.tokenPeriod ?? 0),
    tokenExplicitMaxTtl: seconds('token_explicit_max_ttl', input.tokenExplicitMaxTtl, existing?.tokenExplicitMaxTtl ?? 0),
    tokenNumUses: numUses,
    tokenNoDefaultPolicy: input.tokenNoDefaultPolicy ?? existing?.tokenNoDefaultPolicy ?? false,
    updatedAt: now.toISOString(),
    tokenBoundCidrs: input.tokenBoundCidrs ?? existing?.tokenBoundCidrs ?? [],
  };
}

/** A role as Vault's `GET auth/token/roles/<name>` shows it. */
export function tokenRoleData(role: TokenRoleRecord): Record<string, unknown> {
  return {
    allowed_entity_aliases: null,
    allowed_policies: role.allowedPolicies,
    allowed_policies_glob: [],
    disallowed_policies: role.disallowedPolicies,
    disallowed_policies_glob: [],
    explicit_max_ttl: 0,
    name: role.name,
    orphan: role.orphan,
    path_suffix: role.pathSuffix,
    period: 0,
    renewable: role.renewable,
    token_bound_cidrs: role.tokenBoundCidrs,
    token_explicit_max_ttl: role.tokenExplicitMaxTtl,
    token_no_default_policy: role.tokenNoDefaultPolicy,
    token_period: role.tokenPeriod,
    token_type: 'default-service',
    ...(role.tokenNumUses > 0 ? { token_num_uses: role.tokenNumUses } : {}),
  };
}

/**
 * The policies of a token created against a role whose `allowed_policies` or
 * `disallowed_policies` is set (Vault's role branch): the requested ones, else the allowed list,
 * else the creator's; `default` added unless the request, the role or its disallowed list says
 * no; every policy inside the allowed list when there is one, none in the disallowed list.
 * Returns undefined for a role with neither list: the ordinary rules of auth/token/create apply.
 */
export function rolePolicies(role: TokenRoleRecord, requested: readonly string[] | undefined, noDefaultPolicy: boolean, creatorPolicies: readonly string[]): string[] | undefined {
  if (role.allowedPolicies.length === 0 && role.disallowedPolicies.length === 0) return undefined;
  const addDefault = !noDefaultPolicy && !role.tokenNoDefaultPolicy && !role.disallowedPolicies.includes('default');
  const sanitize = (list: readonly string[]) => [...new Set([...list.filter((p) => p !== ''), ...(addDefault ? ['default'] : [])])].sort();
  let policies = requested && requested.length > 0 ? sanitize(requested) : [];
  if (role.allowedPolicies.length > 0) {
    const allowed = sanitize(role.allowedPolicies);
    if (policies.length === 0) policies = allowed;
    else if (policies.some((p) => !allowed.includes(p))) {
      throw new SecretsError('secrets.invalid_request', `token policies (${JSON.stringify(policies)}) must be subset of the role's allowed policies (${JSON.stringify(allowed)})`);
    }
  } else if (policies.length === 0) {
    policies = sanitize(creatorPolicies);
  }
  for (const p of policies) {
    if (role.disallowedPolicies.includes(p)) throw new SecretsError('secrets.invalid_request', `token policy "${p}" is disallowed by this role`);
  }
  return noDefaultPolicy ? policies.filter((p) => p !== 'default') : policies;
}

/** The smaller of a request's value and the role's, 0 meaning unset on either side (Vault's "lesser value"). */
export function lesserSeconds(requested: number | undefined, role: number): number | undefined {
  if (role === 0) return requested || undefined;
  return requested ? Math.min(requested, role) : role;
}

/** Vault's role cap on `num_uses`: the role's count when the request asks for none or more. */
export function roleNumUses(requested: number, role: number): number {
  if (role === 0) return requested;
  return requested === 0 || role < requested ? role : requested;
}
