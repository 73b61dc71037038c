/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures, the envelope that
 * carries the audit log's checkpoints. Wire-compatible with golang.org/x/mod/sumdb/note: the
 * tests check the Go package's published key and signature byte for byte.
 *
 *   note      = text "\n" 1*signature      ; text ends in "\n", so a blank line separates them
 *   signature = "— " key-name " " base64(key-id(4, big-endian) ‖ ed25519-signature(64)) "\n"
 *   key id    = SHA-256(key-name ‖ 0x0A ‖ 0x01 ‖ public-key(32))[:4]
 *   verifier  = key-name "+" hex(key-id, 8 digits) "+" base64(0x01 ‖ public-key(32))
 *
 * Ed25519 itself is node:crypto's (RFC 8032); nothing cryptographic is implemented here.
 */

import { type KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { AuditError } from '../core/errors.js';

/** Signature type byte of Ed25519 in signed notes (signed-note §Signature types). */
const ALG_ED25519 = 0x01;
const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
/** go's note.Open accepts at most 100 signatures; the spec asks verifiers to accept at least 16. */
const MAX_SIGNATURES = 100;
/** RFC 8410 PKCS#8 prefix of a raw 32-byte Ed25519 seed. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Signs note texts with one key. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  /** The verifier key string for this signer: `<name>+<hex id>+<base64(0x01 ‖ pubkey)>`. */
  readonly verifierKey: string;
  sign(text: string): Uint8Array;
}

/** Checks signatures by one key. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly verifierKey: string;
  verify(text: string, signature: Uint8Array): boolean;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The signature bytes without the key id. */
  readonly signature: Uint8Array;
}

export interface OpenedNote {
  readonly text: string;
  /** Signatures by `verifier` that verified (never empty). */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys the caller did not name: ignored, as the spec requires. */
  readonly unverified: readonly NoteSignature[];
}

function invalid(message: string, details: Record<string, unknown> = {}): AuditError {
  return new AuditError('audit.checkpoint_invalid', message, { details });
}

/** Key names must be non-empty and contain no Unicode space and no '+' (signed-note §Format). */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !/[\u0000-\u001f]/.test(name);
}

/** key ID = SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], big-endian. */
export function ed25519KeyId(name: string, publicKey: Uint8Array): number {
  const digest = createHash('sha256').update(name, 'utf8').update(Uint8Array.of(0x0a, ALG_ED25519)).update(publicKey).digest();
  return digest.readUInt32BE(0);
}

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw invalid('not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

function verifierKeyString(name: string, keyId: number, publicKey: Uint8Array): string {
  const material = Buffer.concat([Uint8Array.of(ALG_ED25519), publicKey]).toString('base64');
  return `${name}+${keyId.toString(16).padStart(8, '0')}+${material}`;
}

/** A signer for an Ed25519 private key (a node:crypto KeyObject). */
export function ed25519Signer(name: string, privateKey: KeyObject): NoteSigner {
  if (!isValidKeyName(name)) throw invalid('the key name must be non-empty and contain no spaces or "+"', { name });
  if (privateKey.asymmetricKeyType !== 'ed25519') throw invalid('the note signing key must be Ed25519');
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  const keyId = ed25519KeyId(name, publicKey);
  return {
    name,
    keyId,
    verifierKey: verifierKeyString(name, keyId, publicKey),
    sign: (text) => new Uint8Array(sign(null, Buffer.from(text, 'utf8'), privateKey)),
  };
}

/** Imports a raw 32-byte Ed25519 seed (as in Go's `PRIVATE+KEY+…` strings) as a private key. */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw invalid('an Ed25519 seed is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** A fresh Ed25519 key pair; the private key as PKCS#8 DER, for sealing under the barrier. */
export function generateNoteKey(name: string): { signer: NoteSigner; pkcs8: Buffer } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { signer: ed25519Signer(name, privateKey), pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }) };
}

export function signerFromPkcs8(name: string, pkcs8: Uint8Array): NoteSigner {
  return ed25519Signer(name, createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' }));
}

/**
 * Parses a verifier key `<name>+<hex id>+<base64(0x01 ‖ pubkey)>`. The key string comes from the
 * user or the network, so every part is checked, including that the id matches the key.
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const trimmed = vkey.trim();
  const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+={0,2})$/.exec(trimmed);
  if (!m) throw invalid('not a verifier key of the form <name>+<8 hex digits>+<base64 key>');
  const [, name, idHex, material] = m as unknown as [string, string, string, string];
  if (!isValidKeyName(name)) throw invalid('the verifier key name is not valid', { name });
  const raw = Buffer.from(material, 'base64');
  if (raw.toString('base64') !== material) throw invalid('the verifier key material is not canonical base64', { name });
  if (raw.length !== 1 + ED25519_PUBLIC_KEY_BYTES || raw[0] !== ALG_ED25519) {
    throw invalid('only Ed25519 (type 0x01) verifier keys are supported', { name, type: raw[0] ?? null });
  }
  const publicKey = raw.subarray(1);
  const keyId = ed25519KeyId(name, publicKey);
  if (keyId !== Number.parseInt(idHex, 16)) throw invalid('the verifier key id does not match its key', { name, keyId: idHex });
  let key: KeyObject;
  try {
    key = publicKeyFromRaw(publicKey);
  } catch (cause) {
    throw new AuditError('audit.checkpoint_invalid', 'the verifier key is not a valid Ed25519 public key', { cause, details: { name } });
  }
  return {
    name,
    keyId,
    verifierKey: trimmed,
    verify: (text, signature) => signature.length === ED25519_SIGNATURE_BYTES && verify(null, Buffer.from(text, 'utf8'), key, signature),
  };
}

function checkNoteCharacters(s: string, what: string): void {
  // Valid UTF-8 is the decoder's job (strings here are already Unicode); control characters other
  // than newline are refused by the spec (signed-note §Format).
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s)) throw invalid(`the ${what} contains a control character`);
  if (/[\ud800-\udfff]/.test(s.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) throw invalid(`the ${what} is not valid Unicode`);
}

/** text ‖ "\n" ‖ one signature line by `signer`. The text must end in a newline. */
export function signNote(text: string, signer: NoteSigner): string {
  if (!text.endsWith('\n')) throw invalid('a note text must end with a newline');
  checkNoteCharacters(text, 'note text');
  const sig = signer.sign(text);
  const blob = Buffer.alloc(4 + sig.length);
  blob.writeUInt32BE(signer.keyId, 0);
  blob.set(sig, 4);
  return `${text}\n— ${signer.name} ${blob.toString('base64')}\n`;
}

/** Splits a note into its text and signature lines without verifying anything. */
export function parseNote(note: string): { text: string; signatures: NoteSignature[] } {
  checkNoteCharacters(note, 'note');
  // The text is separated from the signatures by the last blank line (signed-note §Format).
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw invalid('the note has no signature block');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw invalid(`the note carries more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line) => {
    const m = /^— (\S+) ([A-Za-z0-9+/]+={0,2})$/u.exec(line);
    if (!m || !isValidKeyName(m[1] as string)) throw invalid('malformed signature line', { line: line.slice(0, 200) });
    const blob = Buffer.from(m[2] as string, 'base64');
    if (blob.length < 5 || blob.toString('base64') !== m[2]) throw invalid('malformed signature', { name: m[1] });
    return { name: m[1] as string, keyId: blob.readUInt32BE(0), signature: new Uint8Array(blob.subarray(4)) };
  });
  return { text, signatures };
}

/**
 * Verifies a signed note against the one key the caller trusts and returns its text. Signatures
 * by other keys are ignored; a signature by the trusted key that fails rejects the whole note;
 * at least one must verify. Throws `audit.checkpoint_invalid` otherwise.
 */
export function openNote(note: string, verifier: NoteVerifier): OpenedNote {
  const { text, signatures } = parseNote(note);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  for (const s of signatures) {
    if (s.name !== verifier.name || s.keyId !== verifier.keyId) {
      unverified.push(s);
      continue;
    }
    if (!verifier.verify(text, s.signature)) {
      throw invalid(`the signature by ${verifier.name} does not verify`, { name: verifier.name, keyId: verifier.keyId.toString(16).padStart(8, '0') });
    }
    verified.push(s);
  }
  if (verified.length === 0) throw invalid(`the note carries no signature by ${verifier.verifierKey}`, { name: verifier.name });
  return { text, verified, unverified };
}
