import { createPrivateKey } from 'node:crypto';
import { TransitError } from '../../core/errors.js';
import { isSymmetric } from './key-type.js';
import type { OpenKey } from './open-key.js';
import type { TransitKeyVersionRecord } from './store.js';

/** What `transit/export/<kind>/<name>` hands out (Vault's export types). */
export const EXPORT_KINDS = ['encryption-key', 'signing-key', 'hmac-key', 'public-key'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

export function isExportKind(value: string): value is ExportKind {
  return (EXPORT_KINDS as readonly string[]).includes(value);
}

/**
 * The key material of the chosen versions, in Vault's export formats: raw keys in base64
 * (`encryption-key`, `hmac-key`, the 64-byte seed ‖ public key of ed25519), PEM for ECDSA
 * (SEC 1 `EC PRIVATE KEY`) and RSA (PKCS#1 `RSA PRIVATE KEY`), and for `public-key` what the key
 * read shows. Private material leaves only for a key created or configured `exportable`, which
 * cannot be switched off again; versions below `min_decryption_version` are not exported.
 * `version` undefined exports every usable version; `"latest"` the latest.
 */
export async function exportKey(
  key: OpenKey,
  versions: readonly TransitKeyVersionRecord[],
  kind: ExportKind,
  version: string | undefined,
): Promise<Record<string, string>> {
  const record = key.record;
  if (kind !== 'public-key' && !record.exportable) throw new TransitError('transit.unsupported_operation', `key "${record.name}" is not exportable`);
  if (kind === 'encryption-key' && !isSymmetric(record.type)) throw new TransitError('transit.unsupported_operation', `a ${record.type} key has no encryption key to export`);
  if ((kind === 'signing-key' || kind === 'public-key') && isSymmetric(record.type)) {
    throw new TransitError('transit.unsupported_operation', `a ${record.type} key has no ${kind} to export`);
  }
  const floor = Math.max(record.minDecryptionVersion, record.minAvailableVersion);
  let chosen = versions.filter((v) => v.version >= floor);
  if (version !== undefined) {
    const wanted = version === 'latest' ? record.latestVersion : /^[1-9][0-9]{0,8}$/.test(version) ? Number(version) : Number.NaN;
    if (!Number.isInteger(wanted) || wanted > record.latestVersion) throw new TransitError('transit.invalid_request', `no version "${version}" to export`);
    if (wanted < floor) throw new TransitError('transit.version_disallowed', `version ${wanted} is below the key's min_decryption_version`);
    chosen = chosen.filter((v) => v.version === wanted);
  }
  const out: Record<string, string> = {};
  for (const v of chosen) {
    if (kind === 'public-key') {
      out[String(v.version)] = v.publicKey ?? '';
      continue;
    }
    const material = await key.material(v.version);
    out[String(v.version)] = kind === 'hmac-key' ? material.hmacKey.toString('base64') : kind === 'encryption-key' ? material.key.toString('base64') : signingKey(record.type, material.key);
  }
  return out;
}

function signingKey(type: string, pkcs8: Buffer): string {
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  switch (type) {
    case 'ed25519': {
      const jwk = privateKey.export({ format: 'jwk' });
      return Buffer.concat([Buffer.from(jwk.d!, 'base64url'), Buffer.from(jwk.x!, 'base64url')]).toString('base64');
    }
    case 'ecdsa-p256':
      return privateKey.export({ format: 'pem', type: 'sec1' }).toString();
    default:
      return privateKey.export({ format: 'pem', type: 'pkcs1' }).toString();
  }
}
