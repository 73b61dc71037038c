import { roleUid } from '../../authz/entities.js';
import { SecretsError, TokenError } from '../../core/errors.js';
import type { TokenRecord } from '../../identity/store.js';
import { parseToken, secretMatches } from '../../identity/token.js';
import { cidrListField } from '../../identity/cidr.js';
import { DEFAULT_TOKEN_TTL_MS, createToken, lookupToken, renewToken, revokeTokenTree } from '../../identity/tokens.js';
import { UNSUPPORTED_ROLE_FIELDS, lesserSeconds, roleNumUses, rolePolicies, tokenRoleData, writeTokenRole } from '../../identity/token-roles.js';
import type { TokenRoleRecord } from '../../identity/store.js';
import type { Clock } from '../../core/clock.js';
import { optionalBool, optionalDurationSeconds, optionalInt, optionalString, optionalStringList } from '../../secrets/fields.js';
import { authBlock, ttlOf } from './auth-response.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';
import { unsupportedOperation } from '../../secrets/engine.js';

/**
 * `auth/token/…` (Vault api-docs/auth/token) over Rampart's own tokens: a Vault token is an
 * `rpt.` token whose policies are its Cedar roles. Children are revoked with their parent;
 * `create-orphan` and `no_parent` make tokens without one. Creating a token with a policy the
 * caller does not hold is `token:grant-role` on that role, exactly as `POST /v1/tokens`, so
 * auth/token/create is no way around Rampart's escalation rule; `default` is exempt (every Vault
 * token has it).
 *
 * Token roles (`roles/<name>`, `create/<role>`; src/identity/token-roles.ts) delegate: a token
 * created against a role may get the role's `allowed_policies` without the creator holding them,
 * as in Vault. That is safe here because writing a role is itself checked: every allowed policy
 * the writer does not hold needs `token:grant-role`, so a role can never delegate more than its
 * writer could grant directly. Policies outside the allowed list go through the ordinary rule.
 *
 * `num_uses` limits a token to that many authenticated requests (src/identity/tokens.ts spends
 * them); such a token cannot create tokens, as in Vault.
 */
const SELF_PATHS = new Set(['lookup-self', 'renew-self', 'revoke-self']);
const PATHS = new Set(['create', 'create-orphan', 'lookup', 'lookup-accessor', 'renew', 'renew-accessor', 'revoke', 'revoke-accessor', ...SELF_PATHS]);
const POLICY_RE = /^[A-Za-z0-9_.-]{1,64}$/;

function seconds(ms: number): number {
  return Math.max(0, Math.floor(ms / 1000));
}

export function tokenAuthHandler(): VaultHandler {
  return {
    mountType: 'token',
    needsUnsealed: false,

    async plan(req: VaultRequestHead): Promise<VaultPlan> {
      const role = rolePath(req.path);
      if (role?.kind === 'list') return req.method === 'LIST' ? { capabilities: ['list'], writes: false } : unsupportedOperation();
      if (role?.kind === 'role') {
        if (req.method === 'GET') return { capabilities: ['read'], writes: false };
        if (req.method === 'DELETE') return { capabilities: ['delete'], writes: true };
        if (req.method !== 'POST' && req.method !== 'PUT') unsupportedOperation();
        // Vault's existence check: writing a role that does not exist yet needs `create`.
        return { capabilities: [(await req.stores.tokenRoles.get(req.tenant, role.name)) ? 'update' : 'create'], writes: true };
      }
      if (role?.kind === 'create') return req.method === 'POST' || req.method === 'PUT' ? { capabilities: ['update'], writes: true } : unsupportedOperation();
      if (!PATHS.has(req.path)) throw new SecretsError('secrets.not_found', `unsupported path auth/token/${req.path}`);
      if (req.method === 'GET' && req.path === 'lookup-self') return { capabilities: ['read'], writes: false };
      if (req.method !== 'POST' && req.method !== 'PUT') unsupportedOperation();
      const writes = !req.path.startsWith('lookup');
      // Orphans escape revocation with their creator: Vault asks for sudo, and so does Rampart.
      return { capabilities: req.path === 'create-orphan' ? ['update', 'sudo'] : ['update'], writes };
    },

    async precheck(req: VaultRequest): Promise<void> {
      if (req.path === 'create' || req.path === 'create-orphan') await checkCreate(req, req.path === 'create-orphan');
      const role = rolePath(req.path);
      if (role?.kind === 'create') await checkRoleCreate(req, await requireRole(req, role.name));
      if (role?.kind === 'role' && (req.method === 'POST' || req.method === 'PUT')) await checkRoleWrite(req);
    },

    async handle(req: VaultRequest): Promise<VaultResponse> {
      const role = rolePath(req.path);
      if (role?.kind === 'list') {
        const keys = await req.stores.tokenRoles.list(req.tenant);
        if (keys.length === 0) throw new SecretsError('secrets.not_found', 'no token roles');
        return { data: { keys } };
      }
      if (role?.kind === 'role') return handleRole(req, role.name);
      if (role?.kind === 'create') return createAgainstRole(req, await requireRole(req, role.name));
      switch (req.path) {
        case 'create':
        case 'create-orphan':
          return create(req, req.path === 'create-orphan');
        case 'lookup-self':
          return { data: lookupData(self(req), req.clock) };
        case 'lookup':
          return { data: lookupData(await byToken(req), req.clock) };
        case 'lookup-accessor':
          return { data: lookupData(await byAccessor(req), req.clock) };
        case 'renew':
        case 'renew-self':
        case 'renew-accessor': {
          const record = req.path === 'renew' ? await byToken(req) : req.path === 'renew-self' ? self(req) : await byAccessor(req);
          const increment = optionalDurationSeconds(req.body, 'increment');
          const renewed = await renewToken(req.stores.tokens, req.clock, record, increment === undefined ? undefined : increment * 1000);
          return { auth: authBlock(renewed, undefined, req.clock), audit: { renewed_accessor: renewed.accessor } };
        }
        case 'revoke':
        case 'revoke-self':
        case 'revoke-accessor': {
          const record = req.path === 'revoke' ? await byToken(req) : req.path === 'revoke-self' ? self(req) : await byAccessor(req);
          const revoked = await revokeTokenTree(req.stores.tokens, req.clock, req.tenant, record.accessor);
          return { status: 204, audit: { revoked_accessors: revoked } };
        }
        default:
          throw new SecretsError('secrets.not_found', `unsupported path auth/token/${req.path}`);
      }
    },
  };
}

/** The policies a created token gets: the requested ones (default: the caller's) and `default`. */
function requestedPolicies(req: VaultRequest): string[] {
  const requested = optionalStringList(req.body, 'policies') ?? [...(req.token?.policies ?? [])];
  for (const p of requested) if (!POLICY_RE.test(p)) throw new SecretsError('secrets.invalid_request', `policies: "${p}" is not a policy name`);
  return [...new Set([...requested, ...(optionalBool(req.body, 'no_default_policy') ? [] : ['default'])])].filter((p) => p !== 'root');
}

async function checkCreate(req: VaultRequest, orphanPath: boolean): Promise<void> {
  if ((optionalBool(req.body, 'no_parent') ?? false) && !orphanPath) await req.authorize('vault:sudo', { type: 'Rampart::VaultPath', id: req.fullPath });
  for (const role of requestedPolicies(req)) {
    if (!holds(req, role)) await req.authorize('token:grant-role', roleUid(role));
  }
}

async function create(req: VaultRequest, orphanPath: boolean): Promise<VaultResponse> {
  const b = req.body;
  const caller = req.token;
  const noParent = optionalBool(b, 'no_parent') ?? false;
  const policies = requestedPolicies(req);
  const ttl = optionalDurationSeconds(b, 'ttl');
  const period = optionalDurationSeconds(b, 'period');
  const explicitMax = optionalDurationSeconds(b, 'explicit_max_ttl');
  const orphan = orphanPath || noParent || caller === undefined || caller.tenant !== req.tenant;
  return mint(req, {
    policies,
    orphan,
    ttl,
    period,
    explicitMax,
    numUses: requestedUses(req),
    renewable: optionalBool(b, 'renewable') ?? true,
    creationPath: `auth/token/${orphanPath ? 'create-orphan' : 'create'}`,
  });
}

interface MintOptions {
  readonly policies: readonly string[];
  readonly orphan: boolean;
  readonly ttl: number | undefined;
  readonly period: number | undefined;
  readonly explicitMax: number | undefined;
  readonly numUses: number;
  readonly renewable: boolean;
  readonly creationPath: string;
  readonly role?: string;
  /** The role's `token_bound_cidrs` when created against a role; else the caller's own binding applies. */
  readonly roleBoundCidrs?: readonly string[];
  readonly warnings?: readonly string[];
}

/** Creates the token the request asked for; refused for a use-limited caller (createToken). */
async function mint(req: VaultRequest, o: MintOptions): Promise<VaultResponse> {
  refuseUnsupportedCreateFields(req);
  const displayName = optionalString(req.body, 'display_name', 128) ?? '';
  const { token, record } = await createToken(req.stores.tokens, req.clock, {
    tenant: req.tenant,
    policies: o.policies,
    displayName: displayName === '' ? 'token' : `token-${displayName}`,
    ttlMs: o.ttl === undefined || o.ttl === 0 ? DEFAULT_TOKEN_TTL_MS : o.ttl * 1000,
    createdBy: `${req.principal.type}::${req.principal.id}`,
    parent: o.orphan || req.token === undefined ? undefined : req.token.accessor,
    periodMs: o.period ? o.period * 1000 : undefined,
    explicitMaxTtlMs: o.explicitMax ? o.explicitMax * 1000 : undefined,
    renewable: o.renewable,
    numUses: o.numUses,
    role: o.role,
    creationPath: o.creationPath,
    // A role's blocks replace the creator's (Vault's handleCreateCommon). Without a role the new
    // token is bound to its creator's blocks, an orphan too: Vault binds only children with a
    // parent, but here an orphan needs no `sudo` when made in another tenant, and neither
    // create-orphan nor that may be a way out of the binding.
    boundCidrs: o.roleBoundCidrs ?? req.token?.boundCidrs,
    creator: req.token,
  });
  return {
    auth: authBlock(record, token, req.clock),
    ...(o.warnings && o.warnings.length > 0 ? { warnings: o.warnings } : {}),
    audit: { created_accessor: record.accessor, policies: record.policies, orphan: o.orphan, num_uses: o.numUses, ...(o.role ? { role: o.role } : {}) },
  };
}

/** `num_uses` of a create call; a negative count reaches createToken and is refused there. */
function requestedUses(req: VaultRequest): number {
  return optionalInt(req.body, 'num_uses', Number.MIN_SAFE_INTEGER) ?? 0;
}

/** Vault create fields Rampart does not offer: refused rather than ignored. */
function refuseUnsupportedCreateFields(req: VaultRequest): void {
  const type = optionalString(req.body, 'type', 32);
  if (type !== undefined && type !== '' && type !== 'service') throw new SecretsError('secrets.invalid_request', 'batch tokens are not offered: type must be "service"');
  if ((optionalString(req.body, 'id', 256) ?? '') !== '') throw new SecretsError('secrets.invalid_request', 'choosing a token id is not offered');
  if ((optionalString(req.body, 'entity_alias', 256) ?? '') !== '') throw new SecretsError('secrets.invalid_request', 'entity aliases are not offered');
}

type RoleRoute = { readonly kind: 'list' } | { readonly kind: 'role'; readonly name: string } | { readonly kind: 'create'; readonly name: string };

/** `roles` (list), `roles/<name>`, `create/<role>`; undefined for the fixed paths. */
function rolePath(path: string): RoleRoute | undefined {
  if (path === 'roles' || path === 'roles/') return { kind: 'list' };
  const m = /^(roles|create)\/([^/]+)$/.exec(path);
  if (!m) return undefined;
  return m[1] === 'roles' ? { kind: 'role', name: m[2]! } : { kind: 'create', name: m[2]! };
}

async function requireRole(req: VaultRequest, name: string): Promise<TokenRoleRecord> {
  const role = await req.stores.tokenRoles.get(req.tenant, name);
  if (!role) throw new SecretsError('secrets.invalid_request', `unknown role ${name}`);
  return role;
}

/** A caller holds a policy in the addressed tenant; `default` everyone holds. */
function holds(req: VaultRequest, policy: string): boolean {
  return policy === 'default' || (req.principal.tenant === req.tenant && req.principal.roles.includes(policy));
}

/** Writing a role: every allowed policy the writer does not hold is a `token:grant-role` decision. */
async function checkRoleWrite(req: VaultRequest): Promise<void> {
  for (const policy of optionalStringList(req.body, 'allowed_policies') ?? []) {
    if (!holds(req, policy.trim())) await req.authorize('token:grant-role', roleUid(policy.trim()));
  }
}

/** The policies a create against `role` yields: the role's rules, else the ordinary ones. */
function policiesForRole(req: VaultRequest, role: TokenRoleRecord): string[] {
  const requested = optionalStringList(req.body, 'policies');
  for (const p of requested ?? []) if (!POLICY_RE.test(p)) throw new SecretsError('secrets.invalid_request', `policies: "${p}" is not a policy name`);
  const noDefault = optionalBool(req.body, 'no_default_policy') ?? false;
  return (rolePolicies(role, requested, noDefault, req.token?.policies ?? []) ?? requestedPolicies(req)).filter((p) => p !== 'root');
}

/** Creating against a role: policies the role delegates are granted; any other one is checked as usual. */
async function checkRoleCreate(req: VaultRequest, role: TokenRoleRecord): Promise<void> {
  for (const policy of policiesForRole(req, role)) {
    if (role.allowedPolicies.includes(policy) || holds(req, policy)) continue;
    await req.authorize('token:grant-role', roleUid(policy));
  }
}

async function createAgainstRole(req: VaultRequest, role: TokenRoleRecord): Promise<VaultResponse> {
  const b = req.body;
  const period = optionalDurationSeconds(b, 'period');
  const explicitMax = optionalDurationSeconds(b, 'explicit_max_ttl');
  const warnings: string[] = [];
  const lesser = (name: string, requested: number | undefined, fromRole: number) => {
    const value = lesserSeconds(requested, fromRole);
    if (requested && fromRole) warnings.push(`${name} specified both during creation call and in role; using the lesser value of ${value} seconds`);
    return value;
  };
  return mint(req, {
    policies: policiesForRole(req, role),
    // The role alone decides orphanhood, as in Vault; a caller without a token makes orphans anyway.
    orphan: role.orphan || req.token === undefined || req.token.tenant !== req.tenant,
    ttl: optionalDurationSeconds(b, 'ttl'),
    period: lesser('Period', period, role.tokenPeriod),
    explicitMax: lesser('Explicit max TTL', explicitMax, role.tokenExplicitMaxTtl),
    numUses: roleNumUses(requestedUses(req), role.tokenNumUses),
    renewable: (optionalBool(b, 'renewable') ?? true) && role.renewable,
    creationPath: `auth/token/create/${role.name}${role.pathSuffix === '' ? '' : `/${role.pathSuffix}`}`,
    role: role.name,
    roleBoundCidrs: role.tokenBoundCidrs,
    warnings,
  });
}

async function handleRole(req: VaultRequest, name: string): Promise<VaultResponse> {
  const store = req.stores.tokenRoles;
  if (req.method === 'GET') {
    const role = await store.get(req.tenant, name);
    if (!role) throw new SecretsError('secrets.not_found', 'no such token role');
    return { data: tokenRoleData(role) };
  }
  if (req.method === 'DELETE') {
    const deleted = await store.delete(req.tenant, name);
    return { status: 204, audit: { role: name, deleted } };
  }
  const b = req.body;
  for (const [field, reason] of Object.entries(UNSUPPORTED_ROLE_FIELDS)) {
    const v = b[field];
    if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)) throw new SecretsError('secrets.invalid_request', `${field}: ${reason}`);
  }
  const type = optionalString(b, 'token_type', 32);
  if (type !== undefined && !['', 'default', 'service', 'default-service'].includes(type)) {
    throw new SecretsError('secrets.invalid_request', 'token_type: batch tokens are not offered; use "service" or "default-service"');
  }
  const role = writeTokenRole(
    await store.get(req.tenant, name),
    req.tenant,
    name,
    {
      allowedPolicies: optionalStringList(b, 'allowed_policies'),
      disallowedPolicies: optionalStringList(b, 'disallowed_policies'),
      orphan: optionalBool(b, 'orphan'),
      renewable: optionalBool(b, 'renewable'),
      pathSuffix: optionalString(b, 'path_suffix', 128),
      tokenPeriod: optionalDurationSeconds(b, 'token_period') ?? optionalDurationSeconds(b, 'period'),
      tokenExplicitMaxTtl: optionalDurationSeconds(b, 'token_explicit_max_ttl') ?? optionalDurationSeconds(b, 'explicit_max_ttl'),
      tokenNumUses: optionalInt(b, 'token_num_uses', Number.MIN_SAFE_INTEGER),
      tokenNoDefaultPolicy: optionalBool(b, 'token_no_default_policy'),
      tokenBoundCidrs: cidrListField(b, 'token_bound_cidrs') ?? cidrListField(b, 'bound_cidrs'),
    },
    req.clock.now(),
  );
  await store.put(role);
  return { status: 204, audit: { role: name, allowed_policies: role.allowedPolicies, disallowed_policies: role.disallowedPolicies } };
}

function self(req: VaultRequest): TokenRecord {
  if (!req.token) throw new TokenError('token.not_found', 'the caller authenticated with a client certificate, not a token');
  return req.token;
}

/** The token named in the body; a wrong secret is "not found", as an unknown accessor is. */
async function byToken(req: VaultRequest): Promise<TokenRecord> {
  const presented = optionalString(req.body, 'token', 256);
  if (presented === undefined) throw new SecretsError('secrets.invalid_request', 'token is required');
  const parsed = parseToken(presented);
  const record = parsed ? await req.stores.tokens.get(parsed.accessor) : undefined;
  if (!parsed || !record || record.tenant !== req.tenant || !secretMatches(parsed.secret, record.secretHash)) {
    throw new TokenError('token.not_found', 'no such token in this tenant');
  }
  return record;
}

async function byAccessor(req: VaultRequest): Promise<TokenRecord> {
  const accessor = optionalString(req.body, 'accessor', 64);
  if (accessor === undefined) throw new SecretsError('secrets.invalid_request', 'accessor is required');
  return lookupToken(req.stores.tokens, req.tenant, accessor);
}


function lookupData(record: TokenRecord, clock: Clock): Record<string, unknown> {
  if (record.revokedAt !== null) throw new TokenError('token.not_found', 'the token has been revoked');
  const created = Math.floor(Date.parse(record.createdAt) / 1000);
  return {
    accessor: record.accessor,
    ...(record.boundCidrs === undefined ? {} : { bound_cidrs: record.boundCidrs }),
    creation_time: created,
    creation_ttl: record.creationTtl ?? (record.expiresAt === null ? 0 : seconds(Date.parse(record.expiresAt) - Date.parse(record.createdAt))),
    display_name: record.displayName,
    entity_id: '',
    expire_time: record.expiresAt,
    explicit_max_ttl: record.explicitMaxExpiresAt === undefined ? 0 : seconds(Date.parse(record.explicitMaxExpiresAt) - Date.parse(record.createdAt)),
    issue_time: record.createdAt,
    meta: null,
    num_uses: record.usesLeft ?? 0,
    orphan: record.parent === undefined,
    path: record.creationPath ?? 'auth/token/create',
    period: record.period ?? 0,
    policies: record.policies,
    renewable: record.renewable === true,
    ttl: ttlOf(record, clock),
    type: 'service',
    ...(record.role === undefined ? {} : { role: record.role }),
  };
}
