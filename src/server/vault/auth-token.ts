import { roleUid } from '../../authz/entities.js';
import { SecretsError, TokenError } from '../../core/errors.js';
import type { TokenRecord } from '../../identity/store.js';
import { parseToken, secretMatches } from '../../identity/token.js';
import { DEFAULT_TOKEN_TTL_MS, createToken, lookupToken, renewToken, revokeTokenTree } from '../../identity/tokens.js';
import type { Clock } from '../../core/clock.js';
import { optionalBool, optionalDurationSeconds, optionalString, optionalStringList } from '../../secrets/fields.js';
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

    plan(req: VaultRequestHead): VaultPlan {
      if (!PATHS.has(req.path)) throw new SecretsError('secrets.not_found', `unsupported path auth/token/${req.path}`);
      if (req.method === 'GET' && req.path === 'lookup-self') return { capabilities: ['read'], writes: false };
      if (req.method !== 'POST' && req.method !== 'PUT') unsupportedOperation();
      const writes = !req.path.startsWith('lookup');
      // Orphans escape revocation with their creator: Vault asks for sudo, and so does Rampart.
      return { capabilities: req.path === 'create-orphan' ? ['update', 'sudo'] : ['update'], writes };
    },

    async precheck(req: VaultRequest): Promise<void> {
      if (req.path === 'create' || req.path === 'create-orphan') await checkCreate(req, req.path === 'create-orphan');
    },

    async handle(req: VaultRequest): Promise<VaultResponse> {
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
    if (role === 'default' || (req.principal.tenant === req.tenant && req.principal.roles.includes(role))) continue;
    await req.authorize('token:grant-role', roleUid(role));
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
  const displayName = optionalString(b, 'display_name', 128) ?? '';
  const { token, record } = await createToken(req.stores.tokens, req.clock, {
    tenant: req.tenant,
    policies,
    displayName: displayName === '' ? 'token' : `token-${displayName}`,
    ttlMs: ttl === undefined || ttl === 0 ? DEFAULT_TOKEN_TTL_MS : ttl * 1000,
    createdBy: `${req.principal.type}::${req.principal.id}`,
    parent: orphan ? undefined : caller.accessor,
    periodMs: period ? period * 1000 : undefined,
    explicitMaxTtlMs: explicitMax ? explicitMax * 1000 : undefined,
    renewable: optionalBool(b, 'renewable') ?? true,
  });
  return {
    auth: authBlock(record, token, req.clock),
    audit: { created_accessor: record.accessor, policies: record.policies, orphan },
  };
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
    creation_time: created,
    creation_ttl: record.creationTtl ?? (record.expiresAt === null ? 0 : seconds(Date.parse(record.expiresAt) - Date.parse(record.createdAt))),
    display_name: record.displayName,
    entity_id: '',
    expire_time: record.expiresAt,
    explicit_max_ttl: record.explicitMaxExpiresAt === undefined ? 0 : seconds(Date.parse(record.explicitMaxExpiresAt) - Date.parse(record.createdAt)),
    issue_time: record.createdAt,
    meta: null,
    num_uses: 0,
    orphan: record.parent === undefined,
    path: 'auth/token/create',
    period: record.period ?? 0,
    policies: record.policies,
    renewable: record.renewable === true,
    ttl: ttlOf(record, clock),
    type: 'service',
  };
}
