import { VAULT_PATH_TYPE } from '../../authz/vault-path.js';
import type { AclPolicy, AclRule } from './hcl.js';

/**
 * Vault ACL policies, translated into Cedar so that one engine decides every request.
 *
 * A token's Vault policies are its roles, so a policy named `dev` applies to
 * `principal in Rampart::Role::"dev"`. Each path block becomes one `permit` for its capabilities
 * (`Rampart::Action::"vault:<capability>"`) and, when it lists `deny`, one `forbid` for every
 * action: Cedar's forbid-overrides-permit is exactly "deny wins". The path pattern becomes a
 * condition on the `Rampart::VaultPath` resource (attributes in src/authz/vault-path.ts):
 *
 * - `secret/data/app` → `resource.path == "secret/data/app"`
 * - `secret/data/*`   → `resource.path like "secret/data/*"`
 * - `secret/+/app/*`  → segment 0 is `secret`, segment 1 is non-empty, and the path after two
 *   segments is `like "app/*"`.
 *
 * Semantics, stated once: a request for capability c on path p is allowed when some rule of the
 * caller's policies matches p and lists c, and no matching rule lists `deny`. Vault instead lets
 * the most specific matching pattern decide; Rampart unions them (deny still wins), which never
 * grants more than the union of what the policies say. `test/secrets/acl-cedar.test.ts` checks the
 * translation against a direct reading of the rules with fast-check.
 */
export const ACL_POLICY_FILE = 'vault-acl.cedar';

export interface NamedAclPolicy {
  readonly name: string;
  readonly policy: AclPolicy;
}

const str = (s: string) => JSON.stringify(s);

/** The Cedar condition that `resource` matches the rule's path pattern. */
export function pathCondition(pattern: string): string {
  const segments = pattern.split('/');
  const last = segments.lastIndexOf('+');
  const compare = (attr: string, literal: string) => (literal.endsWith('*') ? `${attr} like ${str(literal)}` : `${attr} == ${str(literal)}`);
  if (last === -1) return compare('resource.path', pattern);
  const conditions: string[] = [];
  for (let i = 0; i <= last; i++) {
    const s = segments[i]!;
    conditions.push(`resource has seg${i}`, s === '+' ? `resource.seg${i} != ""` : `resource.seg${i} == ${str(s)}`);
  }
  const tail = `tail${last + 1}`;
  if (last === segments.length - 1) conditions.push(`!(resource has ${tail})`);
  else conditions.push(`resource has ${tail}`, compare(`resource.${tail}`, segments.slice(last + 1).join('/')));
  return conditions.join(' && ');
}

function ruleToCedar(tenant: string, name: string, index: number, rule: AclRule): string[] {
  const scope = `principal.tenant == ${str(tenant)} && resource.tenant == ${str(tenant)} && ${pathCondition(rule.path)}`;
  const principal = `principal in Rampart::Role::${str(name)}`;
  const out: string[] = [];
  const granted = rule.capabilities.filter((c) => c !== 'deny');
  if (granted.length > 0) {
    const actions = granted.map((c) => `Rampart::Action::${str(`vault:${c}`)}`).join(', ');
    out.push(`@id(${str(`vault-acl/${name}/${index}`)})\npermit (${principal}, action in [${actions}], resource is ${VAULT_PATH_TYPE})\nwhen { ${scope} };`);
  }
  if (rule.capabilities.includes('deny')) {
    out.push(`@id(${str(`vault-acl/${name}/${index}/deny`)})\nforbid (${principal}, action, resource is ${VAULT_PATH_TYPE})\nwhen { ${scope} };`);
  }
  return out;
}

/** The Cedar file holding every ACL policy of the tenant; undefined when there is none. */
export function aclPoliciesToCedar(tenant: string, policies: readonly NamedAclPolicy[]): string | undefined {
  const parts = policies.flatMap((p) => p.policy.rules.flatMap((rule, i) => ruleToCedar(tenant, p.name, i, rule)));
  if (parts.length === 0) return undefined;
  return `// Generated from the Vault ACL policies of sys/policy; edit those, not this file.\n\n${parts.join('\n\n')}\n`;
}
