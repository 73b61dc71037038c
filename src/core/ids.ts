import { randomBytes } from 'node:crypto';

/**
 * Branded identifiers: a tenant name cannot be passed where a token accessor is expected, even
 * though both are strings at run time.
 */
export type TenantId = string & { readonly __brand: 'TenantId' };
export type TokenAccessor = string & { readonly __brand: 'TokenAccessor' };
export type RequestId = string & { readonly __brand: 'RequestId' };
export type LeafIndex = number & { readonly __brand: 'LeafIndex' };

export const DEFAULT_TENANT = 'default' as TenantId;

/** A random identifier: `bytes` bytes of CSPRNG output, base64url-encoded. */
export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * Tenant names are DNS labels (RFC 1123 §2.1) so that they can form a SPIFFE trust domain
 * (`<tenant>.rampart.local`) and a URL path segment without escaping.
 */
export function isTenantName(name: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name);
}
