/**
 * The Cedar vocabulary of Rampart's own API (namespace `Rampart`). Routes name an action and a
 * resource; the authorize hook builds the entities below from the authenticated principal.
 */
export const NAMESPACE = 'Rampart';
export const RAMPART_POLICY_STORE = 'rampart';

export interface EntityUid {
  readonly type: string;
  readonly id: string;
}

export const actionUid = (action: string): EntityUid => ({ type: `${NAMESPACE}::Action`, id: action });
export const tenantUid = (tenant: string): EntityUid => ({ type: `${NAMESPACE}::Tenant`, id: tenant });
export const roleUid = (role: string): EntityUid => ({ type: `${NAMESPACE}::Role`, id: role });
