import type { Clock } from '../core/clock.js';
import { SecretsError } from '../core/errors.js';
import type { CertRoleRecord, CertRoleStore, TokenRecord, TokenStore } from './store.js';
import { DEFAULT_TOKEN_TTL_MS, createToken } from './tokens.js';

/**
 * Cert auth (Vault api-docs/auth/cert) for Rampart SVIDs: the TLS layer has already verified the
 * client certificate against Rampart's CA and its revocation (src/server/authenticate.ts), so a
 * role here only maps the SPIFFE ID to policies. `allowed_spiffe_ids` entries match exactly, or
 * by prefix when they end in `*`. With a role name, only that role is tried; otherwise the
 * first matching role by name wins, deterministically.
 */
export function spiffeIdAllowed(patterns: readonly string[], spiffeId: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? spiffeId.startsWith(p.slice(0, -1)) : p === spiffeId));
}

export async function certLogin(
  stores: { readonly certRoles: CertRoleStore; readonly tokens: TokenStore },
  clock: Clock,
  tenant: string,
  spiffeId: string,
  roleName: string | undefined,
): Promise<{ token: string; record: TokenRecord; role: CertRoleRecord }> {
  const candidates = roleName === undefined ? await stores.certRoles.list(tenant) : [await stores.certRoles.get(tenant, roleName)].filter((r) => r !== undefined);
  const role = candidates.find((r) => spiffeIdAllowed(r.allowedSpiffeIds, spiffeId));
  if (!role) throw new SecretsError('secrets.login_failed', 'no cert role accepts this certificate');
  const { token, record } = await createToken(stores.tokens, clock, {
    tenant,
    policies: [...new Set([...role.policies, 'default'])],
    displayName: `cert-${role.name}`,
    ttlMs: role.tokenTtl > 0 ? role.tokenTtl * 1000 : DEFAULT_TOKEN_TTL_MS,
    createdBy: `Rampart::Workload::${spiffeId}`,
    renewable: true,
  });
  return { token, record, role };
}
