import type { Clock } from '../core/clock.js';
import { TenantError } from '../core/errors.js';
import { isTenantName } from '../core/ids.js';
import type { TenantRecord, TenantStore } from './store.js';

/** The SPIFFE trust domain a tenant gets unless configured otherwise. */
export function defaultTrustDomain(tenant: string): string {
  return `${tenant}.rampart.local`;
}

export async function createTenant(store: TenantStore, clock: Clock, name: string): Promise<TenantRecord> {
  if (!isTenantName(name)) {
    throw new TenantError('tenant.name_invalid', 'tenant names are 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen');
  }
  const record: TenantRecord = { name, trustDomain: defaultTrustDomain(name), createdAt: clock.now().toISOString() };
  if (!(await store.create(record))) throw new TenantError('tenant.exists', `tenant "${name}" already exists`);
  return record;
}

export async function requireTenant(store: TenantStore, name: string): Promise<TenantRecord> {
  const tenant = isTenantName(name) ? await store.get(name) : undefined;
  if (!tenant) throw new TenantError('tenant.unknown', `no tenant named "${name.slice(0, 64)}"`);
  return tenant;
}
