import { SecretsError } from '../../core/errors.js';
import type { Capability, VaultMethod } from '../engine.js';

/** A transit request, as its method and path below the mount name it (Vault's transit API paths). */
export type TransitRoute =
  | { readonly op: 'list-keys' }
  | { readonly op: 'read-key' | 'create-key' | 'delete-key' | 'rotate' | 'config' | 'trim'; readonly name: string }
  | { readonly op: 'encrypt' | 'decrypt' | 'rewrap'; readonly name: string }
  | { readonly op: 'datakey'; readonly name: string; readonly plaintext: boolean }
  | { readonly op: 'sign' | 'verify' | 'hmac'; readonly name: string; readonly hash: string | undefined }
  | { readonly op: 'export'; readonly kind: string; readonly name: string; readonly version: string | undefined }
  | { readonly op: 'random'; readonly bytes: string | undefined }
  | { readonly op: 'hash'; readonly algorithm: string | undefined };

const WRITE: readonly VaultMethod[] = ['POST', 'PUT'];

function unsupported(method: VaultMethod, path: string): SecretsError {
  return new SecretsError('secrets.unsupported_operation', `${method} is not supported on transit path "${path}"`);
}

/** Throws secrets.not_found for a path transit does not have, secrets.unsupported_operation for a wrong verb. */
export function parseTransitPath(method: VaultMethod, path: string): TransitRoute {
  const parts = path.split('/');
  const [head, a, b] = parts;
  const write = WRITE.includes(method);
  const expectWrite = (route: TransitRoute): TransitRoute => {
    if (!write) throw unsupported(method, path);
    return route;
  };
  switch (head) {
    case 'keys':
      if (parts.length === 1 || (parts.length === 2 && a === '')) {
        if (method === 'LIST') return { op: 'list-keys' };
        throw unsupported(method, path);
      }
      if (parts.length === 2) {
        if (method === 'GET') return { op: 'read-key', name: a! };
        if (method === 'DELETE') return { op: 'delete-key', name: a! };
        return expectWrite({ op: 'create-key', name: a! });
      }
      if (parts.length === 3 && (b === 'rotate' || b === 'config' || b === 'trim')) return expectWrite({ op: b, name: a! });
      break;
    case 'encrypt':
    case 'decrypt':
    case 'rewrap':
      if (parts.length === 2) return expectWrite({ op: head, name: a! });
      break;
    case 'datakey':
      if (parts.length === 3 && (a === 'plaintext' || a === 'wrapped')) return expectWrite({ op: 'datakey', name: b!, plaintext: a === 'plaintext' });
      break;
    case 'sign':
    case 'verify':
    case 'hmac':
      if (parts.length === 2 || parts.length === 3) return expectWrite({ op: head, name: a!, hash: b });
      break;
    case 'export':
      if ((parts.length === 3 || parts.length === 4) && method === 'GET') return { op: 'export', kind: a!, name: b!, version: parts[3] };
      if (parts.length === 3 || parts.length === 4) throw unsupported(method, path);
      break;
    case 'random':
      // random[/<source>][/<bytes>]: the source (platform, seal, all) is accepted and ignored,
      // because Rampart has one entropy source, the platform CSPRNG.
      if (parts.length === 1) return expectWrite({ op: 'random', bytes: undefined });
      if (parts.length === 2) return expectWrite({ op: 'random', bytes: isSource(a!) ? undefined : a });
      if (parts.length === 3 && isSource(a!)) return expectWrite({ op: 'random', bytes: b });
      break;
    case 'hash':
      if (parts.length <= 2) return expectWrite({ op: 'hash', algorithm: a });
      break;
  }
  throw new SecretsError('secrets.not_found', `no transit path "${path}"`);
}

function isSource(segment: string): boolean {
  return segment === 'platform' || segment === 'seal' || segment === 'all';
}

/** The Vault capability a route needs (create-vs-update for an existing key decided by the caller). */
export function capabilityOf(route: TransitRoute): Capability {
  switch (route.op) {
    case 'list-keys':
      return 'list';
    case 'read-key':
    case 'export':
      return 'read';
    case 'delete-key':
      return 'delete';
    default:
      return 'update';
  }
}
