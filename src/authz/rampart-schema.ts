/**
 * The Cedar schema of Rampart's own vocabulary: what a policy in a tenant's `rampart` store may
 * name. Pushes to that store are validated against it in strict mode
 * (https://docs.cedarpolicy.com/policies/validation.html), so a misspelt action or attribute is
 * a rejected version rather than a policy that silently never applies.
 *
 * It describes the entities the request path builds (`src/authz/cedar-authorizer.ts`): the
 * principal with its roles as parents, every resource with its tenant as parent, and the context
 * of `src/server/authorize.ts`. `test/authz/rampart-schema.test.ts` fails when a route or an
 * `authorizeRequest` call names an action or entity type missing here; add it to the lists below.
 */
import { NAMESPACE } from './entities.js';
import { vaultPathShape } from './vault-path.js';

/** Every `Rampart::Action` a route declares or a handler authorizes, in one place. */
export const RAMPART_ACTIONS: readonly string[] = [
  'tenant:create',
  'tenant:list',
  'token:create',
  'token:grant-role',
  'token:lookup',
  'token:lookup-self',
  'token:revoke',
  'pki:sign-request',
  'pki:sign',
  'pki:revoke',
  'pki:sign-for-workload',
  'pki:attest',
  'pki:events',
  'pki:agent-sync',
  'pki:agent-token-create',
  'pki:registration-create',
  'pki:registration-read',
  'pki:registration-list',
  'pki:registration-delete',
  'pki:ca-read',
  'pki:ca-rotate',
  'pki:ca-root',
  'audit:read',
  'audit:hash',
  'audit:erase',
  'audit:legal-hold',
  'audit:read-log',
  'audit:proof',
  'authz:list-stores',
  'authz:read',
  'authz:push',
  'authz:rollback',
  'authz:put-entities',
  'authz:check',
  'authz:bundle',
  'authz:preview',
  // The Vault-compatible API (docs/secrets.md): one action per Vault ACL capability, on Rampart::VaultPath.
  'vault:create',
  'vault:read',
  'vault:update',
  'vault:delete',
  'vault:list',
  'vault:patch',
  'vault:sudo',
  // The audit name of Vault logins, which have no principal to authorize yet.
  'vault:login',
  'secrets:barrier',
  'secrets:lease-revoke',
];

/** The principal types of `src/identity/principal.ts`. */
const PRINCIPAL_TYPES = ['Token', 'Workload'] as const;

/**
 * Entity types and their shapes, as the request path builds them. Every resource carries its
 * tenant as an attribute and as its parent; a token is also a resource (lookup, revoke), where
 * it has no `auth_method`, hence optional.
 */
const ENTITY_TYPES: Readonly<Record<string, { readonly parents: readonly string[]; readonly shape: string; readonly resource: boolean }>> = {
  Tenant: { parents: [], shape: '{ tenant: String }', resource: true },
  Role: { parents: ['Tenant'], shape: '{ tenant: String }', resource: true },
  Token: { parents: ['Role', 'Tenant'], shape: '{ tenant: String, auth_method?: String }', resource: true },
  Workload: { parents: ['Role', 'Tenant'], shape: '{ tenant: String, auth_method: String, spiffe_id: String }', resource: false },
  Collection: { parents: ['Tenant'], shape: '{ tenant: String }', resource: true },
  SpiffeId: { parents: ['Tenant'], shape: '{ tenant: String, spiffe_id: String }', resource: true },
  PolicyStore: { parents: ['Tenant'], shape: '{ tenant: String }', resource: true },
  Registration: { parents: ['Tenant'], shape: '{ tenant: String }', resource: true },
  JoinToken: { parents: ['Tenant'], shape: '{ tenant: String }', resource: true },
  Lease: { parents: ['Tenant'], shape: '{ tenant: String }', resource: true },
  VaultPath: { parents: ['Tenant'], shape: vaultPathShape(), resource: true },
};

/** Entity type names declared by the schema, qualified (`Rampart::Token`). */
export const RAMPART_ENTITY_TYPES: readonly string[] = Object.keys(ENTITY_TYPES).map((t) => `${NAMESPACE}::${t}`);

/** The context of every request (`src/server/authorize.ts`). */
const CONTEXT = '{ tenant: String, source_ip: String, mtls: Bool, request_time: Long }';

/** The schema text (Cedar's human-readable schema syntax). */
export function rampartSchema(): string {
  const lines = [`namespace ${NAMESPACE} {`];
  for (const [name, t] of Object.entries(ENTITY_TYPES)) {
    const parents = t.parents.length > 0 ? ` in [${t.parents.join(', ')}]` : '';
    lines.push(`  entity ${name}${parents} = ${t.shape};`);
  }
  const resources = Object.keys(ENTITY_TYPES).filter((name) => ENTITY_TYPES[name]!.resource);
  const actions = RAMPART_ACTIONS.map((a) => JSON.stringify(a)).join(',\n    ');
  lines.push(
    `  action\n    ${actions}`,
    `    appliesTo { principal: [${PRINCIPAL_TYPES.join(', ')}], resource: [${resources.join(', ')}], context: ${CONTEXT} };`,
    '}',
  );
  return `${lines.join('\n')}\n`;
}
