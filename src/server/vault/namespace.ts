/**
 * `X-Vault-Namespace` names a Rampart tenant (Vault Enterprise namespaces, offered here in every
 * edition). Vault writes namespaces with a trailing slash (`acme/`); nested namespaces have no
 * Rampart counterpart and are passed on as written, to be refused as an unknown tenant.
 * `X-Rampart-Tenant` wins when both are sent. Undefined when the header is absent.
 */
export function vaultNamespaceTenant(header: string | string[] | undefined): string | string[] | undefined {
  if (typeof header !== 'string') return header;
  return header.replace(/^\/+|\/+$/g, '');
}
