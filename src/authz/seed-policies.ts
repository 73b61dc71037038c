import { createHash } from 'node:crypto';
import { DEFAULT_TENANT } from '../core/ids.js';

const OPERATOR_ACTIONS = [
  'Rampart::Action::"tenant:create"',
  'Rampart::Action::"tenant:list"',
  // Sealing, unsealing, sys/init and keyring rotation act on every tenant's secrets (docs/secrets.md).
  'Rampart::Action::"secrets:barrier"',
];

/**
 * The policy set a tenant's `rampart` store starts with. It permits the tenant's own `admin`
 * role everything, a workload the renewal of its own SVID, and nobody else anything: Cedar
 * denies whatever no policy permits.
 *
 * A request is always evaluated against the policy set of the tenant it addresses, with the
 * principal's home tenant as an attribute, so the data owner decides who may cross into it.
 * Tenants other than `default` also admit the `default` tenant's admins: `default` is the
 * operator tenant, as Vault's root namespace administers its children. A tenant may remove that
 * policy once policy pushes exist; no tenant admits another tenant's admins.
 */
export function seedPolicies(tenant: string): Record<string, string> {
  const own = `when { principal.tenant == ${JSON.stringify(tenant)} && resource.tenant == ${JSON.stringify(tenant)} }`;
  const text = [
    '@id("tenant-admin")',
    'permit (principal in Rampart::Role::"admin", action, resource)',
    // Creating and listing tenants are operator actions: only `default`'s admins hold them.
    tenant === DEFAULT_TENANT ? `${own};` : `${own}\nunless { action in [${OPERATOR_ACTIONS.join(', ')}] };`,
  ];
  if (tenant !== DEFAULT_TENANT) {
    text.push(
      '',
      '@id("operator-admin")',
      'permit (principal in Rampart::Role::"admin", action, resource)',
      `when { principal.tenant == ${JSON.stringify(DEFAULT_TENANT)} && resource.tenant == ${JSON.stringify(tenant)} };`,
    );
  }
  // A workload may ask for a certificate in its own tenant, and get one only for its own SPIFFE ID:
  // that is renewal with its current SVID over mTLS. Any other ID needs a policy naming it.
  const t = JSON.stringify(tenant);
  text.push(
    '',
    '@id("workload-sign-request")',
    'permit (principal is Rampart::Workload, action == Rampart::Action::"pki:sign-request", resource)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} };`,
    '',
    '@id("workload-renew-own-svid")',
    'permit (principal is Rampart::Workload, action == Rampart::Action::"pki:sign", resource is Rampart::SpiffeId)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} && resource.spiffe_id == principal.spiffe_id };`,
    '',
    // Services are policy enforcement points: they ask for decisions and pull bundles to decide
    // locally, against their own tenant's stores only (docs/authz-decisions.md).
    '@id("workload-authz-decisions")',
    'permit (principal is Rampart::Workload, action in [Rampart::Action::"authz:check", Rampart::Action::"authz:bundle"], resource)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} };`,
  );
  // Node agents (docs/pki.md, "Node attestation"): an attested node receives an SVID only for the
  // ID its evidence proves; with that SVID it may read its entries and events, and obtain SVIDs
  // only for entries whose parent is itself (the resource is the entry's parent).
  text.push(
    '',
    '@id("agent-attest-own-id")',
    'permit (principal is Rampart::Workload, action == Rampart::Action::"pki:attest", resource is Rampart::SpiffeId)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} && principal.auth_method == "attestation" && resource.spiffe_id == principal.spiffe_id };`,
    '',
    '@id("workload-agent-sync")',
    'permit (principal is Rampart::Workload, action in [Rampart::Action::"pki:agent-sync", Rampart::Action::"pki:events"], resource)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} };`,
    '',
    '@id("agent-sign-for-own-workloads")',
    'permit (principal is Rampart::Workload, action == Rampart::Action::"pki:sign-for-workload", resource is Rampart::SpiffeId)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} && resource.spiffe_id == principal.spiffe_id };`,
  );
  // Vault's `default` policy: every token may look up, renew and revoke itself and ask for its own capabilities (docs/secrets.md).
  text.push(
    '',
    '@id("vault-token-self")',
    'permit (principal is Rampart::Token, action in [Rampart::Action::"vault:read", Rampart::Action::"vault:update"], resource is Rampart::VaultPath)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} && ["auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self", "sys/capabilities-self"].contains(resource.path) };`,
    '',
    // A workload exchanges its SVID for a token with Vault's cert login; the cert roles decide the policies.
    '@id("vault-cert-login")',
    'permit (principal is Rampart::Workload, action == Rampart::Action::"vault:update", resource is Rampart::VaultPath)',
    `when { principal.tenant == ${t} && resource.tenant == ${t} && resource.path == "auth/cert/login" };`,
  );
  return { 'rampart.cedar': `${text.join('\n')}\n` };
}

/** Content hash of a policy set version: SHA-256 over the sorted files and the schema. */
export function policyHash(policies: Readonly<Record<string, string>>, schema: string | null): string {
  const files = Object.keys(policies)
    .sort()
    .map((name) => [name, policies[name]]);
  return createHash('sha256').update(JSON.stringify({ files, schema })).digest('hex');
}
