import { SecretsError, TransitError } from '../../core/errors.js';
import type { EngineFactory, EnginePlan, EngineRequest, EngineRequestHead, EngineResponse, SecretsEngine } from '../engine.js';
import { optionalBool, optionalInt, optionalString } from '../fields.js';
import { EXPORT_KINDS, exportKey, isExportKind } from './export.js';
import { describeKey } from './key-description.js';
import { parseKeyType } from './key-type.js';
import { TransitKeys } from './keys.js';
import {
  dataKeyRoute,
  decryptRoute,
  encryptRoute,
  hashRoute,
  hmacRoute,
  randomRoute,
  rewrapRoute,
  signRoute,
  verifyRoute,
} from './operations.js';
import { capabilityOf, parseTransitPath } from './paths.js';
import { refuseUnknownFields } from './request-fields.js';
import type { TransitKeyRef } from './store.js';

/** Default and largest page of `LIST transit/keys` (`?after=<name>&limit=<n>` pages on). */
const LIST_PAGE = 1000;

/**
 * The transit engine ("encryption as a service") behind `sys/mounts` type `transit`: Vault's
 * transit API paths and payloads over the domain modules in this folder. See docs/secrets.md#transit.
 */
export const transitEngine: EngineFactory = {
  type: 'transit',
  create: () => new TransitEngine(),
  async purge(stores, mount) {
    await stores.transitKeys.purge(mount.tenant, mount.accessor);
  },
};

class TransitEngine implements SecretsEngine {
  async plan(req: EngineRequestHead): Promise<EnginePlan> {
    const route = parseTransitPath(req.method, req.path);
    switch (route.op) {
      case 'create-key': {
        // Vault's existence check: writing a key that exists needs `update`, a new one `create`.
        const exists = (await req.stores.transitKeys.get(refOf(req, route.name))) !== undefined;
        return { capabilities: [exists ? 'update' : 'create'], writes: true };
      }
      case 'encrypt': {
        // Encrypting to a key that does not exist creates it (Vault's upsert), which needs `create`.
        const exists = (await req.stores.transitKeys.get(refOf(req, route.name))) !== undefined;
        return { capabilities: [exists ? 'update' : 'create'], writes: !exists };
      }
      case 'delete-key':
      case 'rotate':
      case 'config':
      case 'trim':
        return { capabilities: [capabilityOf(route)], writes: true };
      default:
        return { capabilities: [capabilityOf(route)], writes: false };
    }
  }

  async handle(req: EngineRequest): Promise<EngineResponse> {
    const route = parseTransitPath(req.method, req.path);
    const keys = new TransitKeys(req.stores.transitKeys, req.sealer, req.clock);
    switch (route.op) {
      case 'list-keys':
        return listKeys(req, keys);
      case 'read-key': {
        const { key, versions } = await keys.read(refOf(req, route.name));
        return { data: describeKey(key, versions), audit: { key: route.name } };
      }
      case 'create-key':
        return createKey(req, keys, route.name);
      case 'delete-key':
        refuseUnknownFields(req.body, []);
        await keys.delete(refOf(req, route.name));
        return { status: 204, audit: { key: route.name } };
      case 'rotate': {
        refuseUnknownFields(req.body, []);
        const key = await keys.rotate(refOf(req, route.name));
        return describe(keys, key.name, req, { key: key.name, latest_version: key.latestVersion });
      }
      case 'config': {
        refuseUnknownFields(req.body, ['min_decryption_version', 'min_encryption_version', 'deletion_allowed', 'exportable', 'allow_plaintext_backup']);
        const key = await keys.configure(refOf(req, route.name), {
          minDecryptionVersion: optionalInt(req.body, 'min_decryption_version'),
          minEncryptionVersion: optionalInt(req.body, 'min_encryption_version'),
          deletionAllowed: optionalBool(req.body, 'deletion_allowed'),
          exportable: optionalBool(req.body, 'exportable'),
          allowPlaintextBackup: optionalBool(req.body, 'allow_plaintext_backup'),
        });
        return describe(keys, key.name, req, {
          key: key.name,
          min_decryption_version: key.minDecryptionVersion,
          min_encryption_version: key.minEncryptionVersion,
          deletion_allowed: key.deletionAllowed,
        });
      }
      case 'trim': {
        refuseUnknownFields(req.body, ['min_available_version']);
        const floor = optionalInt(req.body, 'min_available_version');
        if (floor === undefined) throw new TransitError('transit.invalid_request', 'missing min_available_version');
        const key = await keys.trim(refOf(req, route.name), floor);
        return describe(keys, key.name, req, { key: key.name, min_available_version: floor });
      }
      case 'encrypt':
        return encryptRoute(req, keys, refOf(req, route.name));
      case 'decrypt':
        return decryptRoute(req, await keys.open(refOf(req, route.name)));
      case 'rewrap':
        return rewrapRoute(req, await keys.open(refOf(req, route.name)));
      case 'datakey':
        return dataKeyRoute(req, await keys.open(refOf(req, route.name)), route.plaintext);
      case 'sign':
        return signRoute(req, await keys.open(refOf(req, route.name)), route.hash);
      case 'verify':
        return verifyRoute(req, await keys.open(refOf(req, route.name)), route.hash);
      case 'hmac':
        return hmacRoute(req, await keys.open(refOf(req, route.name)), route.hash);
      case 'export': {
        if (!isExportKind(route.kind)) throw new TransitError('transit.invalid_request', `export type must be one of ${EXPORT_KINDS.join(', ')}`);
        const ref = refOf(req, route.name);
        const key = await keys.open(ref);
        const { versions } = await keys.read(ref);
        const exported = await exportKey(key, versions, route.kind, route.version);
        return { data: { name: route.name, type: key.record.type, keys: exported }, audit: { key: route.name, export: route.kind, versions: Object.keys(exported) } };
      }
      case 'random':
        return randomRoute(req, route.bytes);
      case 'hash':
        return hashRoute(req, route.algorithm);
    }
  }
}

/** Keys live per tenant and per mount instance (its accessor), so a remount elsewhere keeps them and unmount purges them. */
function refOf(req: EngineRequestHead, name: string): TransitKeyRef {
  return { tenant: req.tenant, mount: req.mount.accessor, name };
}

async function describe(keys: TransitKeys, name: string, req: EngineRequest, audit: EngineResponse['audit']): Promise<EngineResponse> {
  const { key, versions } = await keys.read(refOf(req, name));
  return { data: describeKey(key, versions), ...(audit ? { audit } : {}) };
}

async function listKeys(req: EngineRequest, keys: TransitKeys): Promise<EngineResponse> {
  const after = req.query.after === undefined || req.query.after === '' ? undefined : req.query.after;
  const limit = req.query.limit === undefined ? LIST_PAGE : Number(req.query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_PAGE) {
    throw new TransitError('transit.invalid_request', `limit must be an integer from 1 to ${LIST_PAGE}`);
  }
  const names = await keys.list(req.tenant, req.mount.accessor, after, limit + 1);
  const page = names.slice(0, limit);
  // Vault answers 404 to a LIST with nothing under it; clients treat that as an empty list.
  if (page.length === 0) throw new SecretsError('secrets.not_found', 'no transit keys');
  const more = names.length > limit;
  return {
    data: { keys: page },
    ...(more ? { warnings: [`more keys follow; continue with ?after=${encodeURIComponent(page[page.length - 1]!)}`] } : {}),
    audit: { count: page.length },
  };
}

async function createKey(req: EngineRequest, keys: TransitKeys, name: string): Promise<EngineResponse> {
  refuseUnknownFields(req.body, ['type', 'derived', 'exportable', 'allow_plaintext_backup', 'convergent_encryption']);
  if (optionalBool(req.body, 'convergent_encryption')) {
    throw new TransitError('transit.unsupported_operation', 'convergent encryption is not offered (see docs/secrets.md#transit)');
  }
  const { created, key } = await keys.create(refOf(req, name), {
    type: parseKeyType(optionalString(req.body, 'type')),
    derived: optionalBool(req.body, 'derived') ?? false,
    exportable: optionalBool(req.body, 'exportable') ?? false,
    allowPlaintextBackup: optionalBool(req.body, 'allow_plaintext_backup') ?? false,
  });
  return describe(keys, key.name, req, { key: key.name, type: key.type, created });
}
