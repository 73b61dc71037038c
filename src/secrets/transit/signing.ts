import { type KeyObject, constants, createPrivateKey, createPublicKey, privateEncrypt, publicDecrypt, sign, timingSafeEqual, verify } from 'node:crypto';
import { TransitError } from '../../core/errors.js';
import { decodeBase64Strict, decodeBase64UrlStrict, formatVersioned, parseVersioned } from './ciphertext.js';
import { nodeHashName } from './hash-algorithm.js';
import { isSymmetric } from './key-type.js';
import type { OpenKey } from './open-key.js';

export type SignatureAlgorithm = 'pss' | 'pkcs1v15';
export type MarshalingAlgorithm = 'asn1' | 'jws';

export interface SignRequest {
  readonly input: Buffer;
  readonly hashAlgorithm?: string | undefined;
  /** The input is already the digest (RSA PKCS#1 v1.5 only; see digestInfo below). */
  readonly prehashed?: boolean | undefined;
  readonly signatureAlgorithm?: string | undefined;
  readonly marshalingAlgorithm?: string | undefined;
  readonly keyVersion?: number | undefined;
}

export interface VerifyRequest extends Omit<SignRequest, 'keyVersion'> {
  readonly signature: string;
}

/**
 * DER DigestInfo prefixes (RFC 8017 §9.2, note 1): a prehashed PKCS#1 v1.5 signature is the
 * RSA private operation over prefix ‖ digest with EMSA-PKCS1-v1_5 padding, which OpenSSL applies.
 */
const DIGEST_INFO: Record<string, Buffer> = {
  sha1: Buffer.from('3021300906052b0e03021a05000414', 'hex'),
  sha224: Buffer.from('302d300d06096086480165030402040500041c', 'hex'),
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

interface Scheme {
  readonly hash: string | null;
  readonly marshaling: MarshalingAlgorithm;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly prehashed: boolean;
}

function schemeFor(key: OpenKey, request: SignRequest): Scheme {
  const type = key.record.type;
  if (isSymmetric(type)) throw new TransitError('transit.unsupported_operation', `key type ${type} does not support signing`);
  const marshaling = request.marshalingAlgorithm ?? 'asn1';
  if (marshaling !== 'asn1' && marshaling !== 'jws') throw new TransitError('transit.invalid_request', 'marshaling_algorithm must be asn1 or jws');
  const signatureAlgorithm = request.signatureAlgorithm ?? 'pss';
  if (signatureAlgorithm !== 'pss' && signatureAlgorithm !== 'pkcs1v15') throw new TransitError('transit.invalid_request', 'signature_algorithm must be pss or pkcs1v15');
  const prehashed = request.prehashed ?? false;
  // Ed25519 hashes the message itself (RFC 8032 §5.1.6); Vault ignores hash_algorithm for it.
  const hash = type === 'ed25519' ? null : nodeHashName(request.hashAlgorithm);
  if (prehashed) {
    // Node's crypto always hashes before ECDSA, Ed25519 and RSA-PSS; only PKCS#1 v1.5 can sign a
    // given digest (through the RSA private operation with its own padding).
    if (type !== 'rsa-2048' || signatureAlgorithm !== 'pkcs1v15' || !hash || !DIGEST_INFO[hash]) {
      throw new TransitError('transit.unsupported_operation', 'prehashed input is supported for rsa-2048 with signature_algorithm pkcs1v15 and a SHA-1 or SHA-2 hash only');
    }
  }
  return { hash, marshaling, signatureAlgorithm, prehashed };
}

function prehashedDigest(scheme: Scheme, input: Buffer): Buffer {
  const prefix = DIGEST_INFO[scheme.hash!]!;
  if (input.length !== prefix[prefix.length - 1]) throw new TransitError('transit.invalid_request', `a prehashed ${scheme.hash} input must be ${prefix[prefix.length - 1]} bytes`);
  return Buffer.concat([prefix, input]);
}

function signingOptions(key: OpenKey, scheme: Scheme, keyObject: KeyObject) {
  switch (key.record.type) {
    case 'ecdsa-p256':
      return { key: keyObject, dsaEncoding: scheme.marshaling === 'jws' ? ('ieee-p1363' as const) : ('der' as const) };
    case 'rsa-2048':
      return scheme.signatureAlgorithm === 'pss'
        ? { key: keyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN }
        : { key: keyObject, padding: constants.RSA_PKCS1_PADDING };
    default:
      return { key: keyObject };
  }
}

/** Signs `input` (hashing it first unless prehashed) and returns `vault:vN:<signature>`. */
export async function signInput(key: OpenKey, request: SignRequest): Promise<{ signature: string; keyVersion: number }> {
  const scheme = schemeFor(key, request);
  const version = key.writeVersion(request.keyVersion);
  const privateKey = createPrivateKey({ key: (await key.material(version)).key, format: 'der', type: 'pkcs8' });
  const raw = scheme.prehashed
    ? privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, prehashedDigest(scheme, request.input))
    : sign(scheme.hash, request.input, signingOptions(key, scheme, privateKey));
  const encoded = scheme.marshaling === 'jws' ? raw.toString('base64url') : raw.toString('base64');
  return { signature: formatVersioned(version, encoded), keyVersion: version };
}

/**
 * Verifies a `vault:vN:` signature. A signature that does not verify, does not decode, or names a
 * version the key never had is `false`; a value without the prefix is transit.invalid_request.
 */
export async function verifySignature(key: OpenKey, request: VerifyRequest): Promise<boolean> {
  const scheme = schemeFor(key, request);
  const parsed = parseVersioned(request.signature);
  if (!parsed) throw new TransitError('transit.invalid_request', 'invalid signature: expected vault:v<version>:<signature>');
  if (!key.readable(parsed.version)) return false;
  const raw = scheme.marshaling === 'jws' ? decodeBase64UrlStrict(parsed.payload) : decodeBase64Strict(parsed.payload);
  if (!raw || raw.length === 0) return false;
  const publicKey = createPublicKey(createPrivateKey({ key: (await key.material(parsed.version)).key, format: 'der', type: 'pkcs8' }));
  if (scheme.prehashed) {
    const expected = prehashedDigest(scheme, request.input);
    let recovered: Buffer;
    try {
      recovered = publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, raw);
    } catch {
      return false;
    }
    return recovered.length === expected.length && timingSafeEqual(recovered, expected);
  }
  const options = signingOptions(key, scheme, publicKey);
  const verifyOptions = 'saltLength' in options ? { ...options, saltLength: constants.RSA_PSS_SALTLEN_AUTO } : options;
  try {
    return verify(scheme.hash, request.input, verifyOptions, raw);
  } catch {
    return false;
  }
}
