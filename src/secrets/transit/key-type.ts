import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { TransitError } from '../../core/errors.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** The key types this transit engine offers, named as Vault names them. */
export const TRANSIT_KEY_TYPES = ['aes256-gcm96', 'chacha20-poly1305', 'ed25519', 'ecdsa-p256', 'rsa-2048'] as const;
export type TransitKeyType = (typeof TRANSIT_KEY_TYPES)[number];

export function isTransitKeyType(value: string): value is TransitKeyType {
  return (TRANSIT_KEY_TYPES as readonly string[]).includes(value);
}

export function parseKeyType(value: string | undefined): TransitKeyType {
  const type = value ?? 'aes256-gcm96';
  if (!isTransitKeyType(type)) throw new TransitError('transit.invalid_request', `unknown key type "${type}"; use one of ${TRANSIT_KEY_TYPES.join(', ')}`);
  return type;
}

export function isSymmetric(type: TransitKeyType): type is 'aes256-gcm96' | 'chacha20-poly1305' {
  return type === 'aes256-gcm96' || type === 'chacha20-poly1305';
}

/** What each type can do, as Vault's key read reports it (`supports_*`). */
export function capabilitiesOf(type: TransitKeyType) {
  const symmetric = isSymmetric(type);
  return {
    supports_encryption: symmetric,
    supports_decryption: symmetric,
    // Derivation is offered for the symmetric types; see docs/secrets.md#transit for why not ed25519.
    supports_derivation: symmetric,
    supports_signing: !symmetric,
  };
}

/**
 * Fresh secret material for one key version. Symmetric keys are 32 random bytes; asymmetric keys
 * are the PKCS#8 DER private key. `publicKey` is what Vault's key read shows: base64 of the raw
 * 32-byte key for ed25519 (RFC 8032 §5.1.5), an SPKI PEM for ECDSA and RSA.
 */
export async function generateKeyMaterial(type: TransitKeyType): Promise<{ key: Buffer; publicKey: string | null }> {
  switch (type) {
    case 'aes256-gcm96':
    case 'chacha20-poly1305':
      return { key: randomBytes(32), publicKey: null };
    case 'ed25519': {
      const pair = await generateKeyPairAsync('ed25519');
      const raw = Buffer.from(pair.publicKey.export({ format: 'jwk' }).x!, 'base64url');
      return { key: pair.privateKey.export({ format: 'der', type: 'pkcs8' }), publicKey: raw.toString('base64') };
    }
    case 'ecdsa-p256': {
      const pair = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
      return {
        key: pair.privateKey.export({ format: 'der', type: 'pkcs8' }),
        publicKey: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      };
    }
    case 'rsa-2048': {
      const pair = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
      return {
        key: pair.privateKey.export({ format: 'der', type: 'pkcs8' }),
        publicKey: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      };
    }
  }
}

/** The `name` Vault's key read gives an asymmetric version. */
export function publicKeyName(type: TransitKeyType): string {
  switch (type) {
    case 'ecdsa-p256':
      return 'P-256';
    default:
      return type;
  }
}
