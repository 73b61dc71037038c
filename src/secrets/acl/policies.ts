import type { Clock } from '../../core/clock.js';
import { SecretsError } from '../../core/errors.js';
import { RAMPART_POLICY_STORE } from '../../authz/entities.js';
import { policyHash } from '../../authz/seed-policies.js';
import type { PolicyStore } from '../../authz/store.js';
import type { AclPolicyRecord, AclPolicyStore } from '../store.js';
import { ACL_POLICY_FILE, aclPoliciesToCedar } from './cedar.js';
import { parseAclPolicy } from './hcl.js';

/**
 * `sys/policy`: Vault ACL policies are kept as written (to read them back) and, in the same
 * transaction, translated into the `vault-acl.cedar` file of the tenant's `rampart` policy
 * store as a new active version, so the change is versioned and audited like any policy push.
 * The caller invalidates the authorizer's cache for the tenant after the commit.
 */
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** `root` is Vault's superuser policy; `admin` is Rampart's administrator role: neither is an ACL. */
const RESERVED = new Set(['root', 'admin']);

export interface AclPorts {
  readonly aclPolicies: AclPolicyStore;
  readonly policies: PolicyStore;
}

export function checkPolicyName(name: string): void {
  if (!NAME_RE.test(name)) throw new SecretsError('secrets.invalid_request', 'a policy name is 1–64 letters, digits, "_", "." or "-"');
  if (RESERVED.has(name)) throw new SecretsError('secrets.policy_reserved', `the policy "${name}" cannot be changed`);
}

export async function writeAclPolicy(ports: AclPorts, clock: Clock, tenant: string, name: string, hcl: string, author: string): Promise<void> {
  checkPolicyName(name);
  parseAclPolicy(hcl);
  await ports.aclPolicies.lockTenant(tenant);
  await ports.aclPolicies.put({ tenant, name, hcl, updatedAt: clock.now().toISOString() });
  await publish(ports, clock, tenant, author, `sys/policy: write ${name}`);
}

/** Returns false when there was no such policy. */
export async function deleteAclPolicy(ports: AclPorts, clock: Clock, tenant: string, name: string, author: string): Promise<boolean> {
  checkPolicyName(name);
  await ports.aclPolicies.lockTenant(tenant);
  if (!(await ports.aclPolicies.delete(tenant, name))) return false;
  await publish(ports, clock, tenant, author, `sys/policy: delete ${name}`);
  return true;
}

export async function readAclPolicy(store: AclPolicyStore, tenant: string, name: string): Promise<AclPolicyRecord> {
  const record = await store.get(tenant, name);
  if (!record) throw new SecretsError('secrets.not_found', `no policy named "${name}"`);
  return record;
}

/**
 * Recompiles the tenant's ACL policies and activates the result as a new version of its
 * `rampart` policy store when it differs from the active one; returns whether it did. Used when
 * the translation itself changes (migration 0027), so stored HCL keeps Vault's meaning.
 */
export async function recompileAclPolicies(ports: AclPorts, clock: Clock, tenant: string, author: string, message: string): Promise<boolean> {
  await ports.aclPolicies.lockTenant(tenant);
  return publish(ports, clock, tenant, author, message, { onlyIfChanged: true });
}

async function publish(ports: AclPorts, clock: Clock, tenant: string, author: string, message: string, options: { onlyIfChanged?: boolean } = {}): Promise<boolean> {
  const all = await ports.aclPolicies.list(tenant);
  const cedar = aclPoliciesToCedar(
    tenant,
    all.map((r) => ({ name: r.name, policy: parseAclPolicy(r.hcl) })),
  );
  const active = await ports.policies.active(tenant, RAMPART_POLICY_STORE);
  if (!active) throw new SecretsError('secrets.invalid_request', 'the tenant has no active rampart policy set to add ACL policies to');
  if (options.onlyIfChanged && active.policies[ACL_POLICY_FILE] === cedar) return false;
  const files: Record<string, string> = { ...active.policies };
  if (cedar === undefined) delete files[ACL_POLICY_FILE];
  else files[ACL_POLICY_FILE] = cedar;
  const version = (await ports.policies.latestVersion(tenant, RAMPART_POLICY_STORE)) + 1;
  await ports.policies.insert({
    ...active,
    version,
    hash: policyHash(files, active.schema),
    policies: files,
    status: 'active',
    author,
    message,
    createdAt: clock.now().toISOString(),
  });
  return true;
}
