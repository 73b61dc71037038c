import { policyHash } from '../../src/authz/seed-policies.js';
import type { EntityJson } from '../../src/authz/evaluator.js';
import type { TestServer } from './server.js';

/**
 * Activates a new policy version in a tenant's store as the policy lifecycle does (committed,
 * then `authorizer.invalidate(tenant)` before the change is acknowledged), for tests of what
 * decisions do with versions rather than of the lifecycle itself.
 */
export async function activateVersion(
  s: TestServer,
  tenant: string,
  store: string,
  policies: Record<string, string>,
  schema: string | null = null,
): Promise<number> {
  const version = (await s.runtime.stores.policies.latestVersion(tenant, store)) + 1;
  await s.runtime.stores.policies.insert({
    tenant,
    store,
    version,
    hash: policyHash(policies, schema),
    policies,
    schema,
    status: 'active',
    author: 'test',
    message: `version ${version}`,
    createdAt: s.clock.now().toISOString(),
  });
  s.runtime.authorizer.invalidate(tenant);
  return version;
}

/** Replaces a store's entities as `PUT …/entities` does, then invalidates; returns the new revision. */
export async function replaceEntities(s: TestServer, tenant: string, store: string, entities: readonly EntityJson[]): Promise<number> {
  const revision = await s.runtime.stores.entities.replace(tenant, store, entities, s.clock.now().toISOString());
  s.runtime.authorizer.invalidate(tenant);
  return revision;
}
