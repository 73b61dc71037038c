import { SecretsError } from '../../core/errors.js';
import { certLogin } from '../../identity/cert-login.js';
import { optionalDurationSeconds, optionalString, optionalStringList } from '../../secrets/fields.js';
import { authBlock } from './auth-response.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';
import { unsupportedOperation } from '../../secrets/engine.js';

/**
 * `auth/cert/…` (Vault api-docs/auth/cert) for Rampart SVIDs: `certs/<name>` maps SPIFFE IDs to
 * policies; `login` exchanges the verified client certificate of the TLS connection for a token.
 * A workload may call login in its own tenant by the seed policy `vault-cert-login`.
 */
const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

export function certAuthHandler(): VaultHandler {
  return {
    mountType: 'cert',
    needsUnsealed: false,

    plan(req: VaultRequestHead): VaultPlan {
      const m = req.method;
      if (req.path === 'login') {
        if (m === 'POST' || m === 'PUT') return { capabilities: ['update'], writes: true };
      } else if (req.path === 'certs' || req.path === 'certs/') {
        if (m === 'LIST') return { capabilities: ['list'], writes: false };
      } else if (req.path.startsWith('certs/')) {
        if (m === 'GET') return { capabilities: ['read'], writes: false };
        if (m === 'DELETE') return { capabilities: ['delete'], writes: true };
        if (m === 'POST' || m === 'PUT') return { capabilities: ['update'], writes: true };
      } else {
        throw new SecretsError('secrets.not_found', `unsupported path auth/cert/${req.path}`);
      }
      unsupportedOperation();
    },

    async handle(req: VaultRequest): Promise<VaultResponse> {
      const store = req.stores.certRoles;
      if (req.path === 'login') {
        if (req.principal.authMethod !== 'mtls') throw new SecretsError('secrets.login_failed', 'cert login needs a client certificate and no token');
        const r = await certLogin(req.stores, req.clock, req.tenant, req.principal.id, optionalString(req.body, 'name', 128));
        return { auth: authBlock(r.record, r.token, req.clock, { cert_name: r.role.name }), audit: { role: r.role.name, created_accessor: r.record.accessor } };
      }
      if (req.method === 'LIST') {
        const keys = (await store.list(req.tenant)).map((r) => r.name);
        if (keys.length === 0) throw new SecretsError('secrets.not_found', 'no cert roles');
        return { data: { keys } };
      }
      const name = req.path.slice('certs/'.length);
      if (!NAME_RE.test(name)) throw new SecretsError('secrets.invalid_request', 'a cert role name is 1–128 letters, digits, "_", "." or "-"');
      if (req.method === 'GET') {
        const r = await store.get(req.tenant, name);
        if (!r) throw new SecretsError('secrets.not_found', `no cert role "${name}"`);
        return { data: { allowed_uri_sans: r.allowedSpiffeIds, token_policies: r.policies, policies: r.policies, token_ttl: r.tokenTtl } };
      }
      if (req.method === 'DELETE') {
        await store.delete(req.tenant, name);
        return { status: 204, audit: { cert_role: name } };
      }
      const allowed = optionalStringList(req.body, 'allowed_uri_sans') ?? optionalStringList(req.body, 'allowed_spiffe_ids');
      if (!allowed || allowed.length === 0 || !allowed.every((p) => p.startsWith('spiffe://'))) {
        throw new SecretsError('secrets.invalid_request', 'allowed_uri_sans: one or more spiffe:// IDs (a trailing * matches any suffix)');
      }
      await store.put({
        tenant: req.tenant,
        name,
        allowedSpiffeIds: allowed,
        policies: optionalStringList(req.body, 'token_policies') ?? optionalStringList(req.body, 'policies') ?? [],
        tokenTtl: optionalDurationSeconds(req.body, 'token_ttl') ?? optionalDurationSeconds(req.body, 'ttl') ?? 0,
        createdAt: req.clock.now().toISOString(),
      });
      return { status: 204, audit: { cert_role: name } };
    },
  };
}
