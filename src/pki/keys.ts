/**
 * Key pairs for the certificate authority and its leaves, on Node's WebCrypto.
 *
 * The four algorithms are the ones every TLS stack we interoperate with (Go, rustls, OpenSSL,
 * BoringSSL, Java) accepts in X.509 path validation; anything else is refused at the edge
 * (see `parseCsr`) rather than discovered at handshake time.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, sign, webcrypto } from 'node:crypto';
import { PkiError } from '../core/errors.js';
import * as der from './der.js';

// @peculiar/x509 resolves its crypto provider from a process-wide registry; without this it throws
// on first use. Every pki module imports this one, so the provider is set before any is called.
x509.cryptoProvider.set(webcrypto);

/** @types/node 20 declares WebCrypto types only under `webcrypto`, not as globals. */
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

export type KeyAlgorithm = 'ecdsa-p256' | 'ed25519' | 'rsa-2048' | 'rsa-3072';

export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'ecdsa-p256';

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ecdsa-p256', 'ed25519', 'rsa-2048', 'rsa-3072'];

const RSA_PUBLIC_EXPONENT = new Uint8Array([0x01, 0x00, 0x01]);

type KeyParams = webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams | webcrypto.Algorithm;

/**
 * RSA keys carry their hash in WebCrypto, and @peculiar/x509 lets the signing key's own
 * `algorithm` override the requested signing algorithm, so the hash must be bound here.
 */
function importParamsFor(alg: KeyAlgorithm): KeyParams {
  switch (alg) {
    case 'ecdsa-p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'ed25519':
      return { name: 'Ed25519' };
    case 'rsa-2048':
    case 'rsa-3072':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  }
}

function generateParamsFor(alg: KeyAlgorithm): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams | webcrypto.Algorithm {
  switch (alg) {
    case 'rsa-2048':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: RSA_PUBLIC_EXPONENT };
    case 'rsa-3072':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 3072, publicExponent: RSA_PUBLIC_EXPONENT };
    default:
      return importParamsFor(alg);
  }
}

/**
 * The signature algorithm a key of `alg` signs certificates with: ecdsa-with-SHA256 (RFC 5758
 * §3.2), sha256WithRSAEncryption (RFC 4055 §5) or Ed25519 (RFC 8410 §3), which hashes internally.
 */
export function signingAlgorithmFor(alg: KeyAlgorithm): webcrypto.EcdsaParams | webcrypto.Algorithm {
  switch (alg) {
    case 'ecdsa-p256':
      return { name: 'ECDSA', hash: 'SHA-256' };
    case 'ed25519':
      return { name: 'Ed25519' };
    case 'rsa-2048':
    case 'rsa-3072':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  }
}

/**
 * The private key is extractable so that it can be wrapped by the secrets barrier and stored;
 * it is never written anywhere in the clear.
 */
export async function generateKeyPair(alg: KeyAlgorithm = DEFAULT_KEY_ALGORITHM): Promise<CryptoKeyPair> {
  const pair = await webcrypto.subtle.generateKey(generateParamsFor(alg), true, ['sign', 'verify']);
  return pair as CryptoKeyPair;
}

/**
 * Which of our algorithms a WebCrypto key algorithm (of a `CryptoKey` or of an x509 `PublicKey`)
 * is, or `undefined` when it is none of them.
 */
export function keyAlgorithmOf(algorithm: webcrypto.KeyAlgorithm): KeyAlgorithm | undefined {
  const a = algorithm as webcrypto.KeyAlgorithm & { namedCurve?: unknown; modulusLength?: unknown };
  switch (a.name) {
    case 'ECDSA':
      return a.namedCurve === 'P-256' ? 'ecdsa-p256' : undefined;
    case 'Ed25519':
      return 'ed25519';
    case 'RSASSA-PKCS1-v1_5':
      if (a.modulusLength === 2048) return 'rsa-2048';
      if (a.modulusLength === 3072) return 'rsa-3072';
      return undefined;
    default:
      return undefined;
  }
}

/**
 * Which of our algorithms a Node public key is, or `undefined` when it is none of them. RSA keys
 * restricted to PSS (`rsa-pss` SPKI) are refused: they cannot sign PKCS #1 v1.5 TLS handshakes
 * that peers still negotiate.
 */
export function keyAlgorithmOfKeyObject(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'ec':
      return details?.namedCurve === 'prime256v1' ? 'ecdsa-p256' : undefined;
    case 'ed25519':
      return 'ed25519';
    case 'rsa':
      if (details?.modulusLength === 2048) return 'rsa-2048';
      if (details?.modulusLength === 3072) return 'rsa-3072';
      return undefined;
    default:
      return undefined;
  }
}

/**
 * The DER AlgorithmIdentifier of what a key of `alg` signs certificates and CRLs with:
 * ecdsa-with-SHA256 (RFC 5758 §3.2, no parameters), sha256WithRSAEncryption (RFC 4055 §5, NULL
 * parameters) or Ed25519 (RFC 8410 §3, no parameters).
 */
export function signatureAlgorithmIdentifier(alg: KeyAlgorithm): Buffer {
  switch (alg) {
    case 'ecdsa-p256':
      return der.sequence(der.oid('1.2.840.10045.4.3.2'));
    case 'ed25519':
      return der.sequence(der.oid('1.3.101.112'));
    case 'rsa-2048':
    case 'rsa-3072':
      return der.sequence(der.oid('1.2.840.113549.1.1.11'), der.nullValue());
  }
}

const nodeKeys = new WeakMap<CryptoKey, KeyObject>();

/**
 * Signs `data` the way {@link signatureAlgorithmIdentifier} names, with Node's synchronous
 * `crypto.sign`: ECDSA comes out as the DER Ecdsa-Sig-Value X.509 wants (RFC 3279 §2.2.3), RSA as
 * PKCS #1 v1.5. The WebCrypto round trip (a promise and a P1363 re-encoding per signature) costs
 * more than the signature itself on the issuance path.
 */
export function signWith(alg: KeyAlgorithm, key: CryptoKey, data: Uint8Array): Buffer {
  let keyObject = nodeKeys.get(key);
  if (keyObject === undefined) {
    keyObject = KeyObject.from(key);
    nodeKeys.set(key, keyObject);
  }
  return sign(alg === 'ed25519' ? null : 'sha256', data, keyObject);
}

/** PKCS #8 (RFC 5208 §5) in the `PRIVATE KEY` PEM label of RFC 7468 §10. */
export async function exportPrivateKeyPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return `${x509.PemConverter.encode(der, 'PRIVATE KEY')}\n`;
}

/**
 * Loads a stored CA key. The imported key is not extractable: once back in memory there is no
 * reason to let it out again. A key that does not decode, or is not of `alg`, means the CA
 * cannot sign, hence `pki.ca_unavailable`.
 */
export async function importPrivateKeyPkcs8Pem(pem: string, alg: KeyAlgorithm): Promise<CryptoKey> {
  let key: CryptoKey;
  try {
    const blocks = x509.PemConverter.decodeWithHeaders(pem);
    const block = blocks[0];
    if (blocks.length !== 1 || block === undefined || block.type !== 'PRIVATE KEY') {
      throw new Error('expected exactly one PEM block labelled PRIVATE KEY');
    }
    key = await webcrypto.subtle.importKey('pkcs8', block.rawData, importParamsFor(alg), false, ['sign']);
  } catch (err) {
    throw new PkiError('pki.ca_unavailable', `The CA private key could not be loaded as ${alg}`, { cause: err });
  }
  if (keyAlgorithmOf(key.algorithm) !== alg) {
    throw new PkiError('pki.ca_unavailable', `The CA private key is not a ${alg} key`);
  }
  return key;
}
