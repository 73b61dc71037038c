import { TransitError } from '../../core/errors.js';
import type { EngineRequest, EngineResponse } from '../engine.js';
import { optionalBool, optionalInt, optionalString } from '../fields.js';
import { type BatchOutcome, runBatch } from './batch.js';
import { decrypt, encrypt, generateDataKey, rewrap } from './encryption.js';
import { hashInput } from './hash.js';
import { computeHmac, verifyHmac } from './hmac.js';
import { parseKeyType } from './key-type.js';
import type { TransitKeys } from './keys.js';
import type { OpenKey } from './open-key.js';
import { generateRandom } from './random.js';
import { base64Field, batchInput, refuseUnknownFields, requiredBase64, requiredString } from './request-fields.js';
import { signInput, verifySignature } from './signing.js';
import type { TransitKeyRef } from './store.js';

/**
 * The cryptographic operations of the transit engine in Vault's request and response shapes:
 * field parsing, `batch_input`/`batch_results`, and the non-secret audit facts of each request.
 */
type Body = Readonly<Record<string, unknown>>;

/** Runs one item or `batch_input`, in Vault's response shapes; `reference` is echoed per item. */
async function singleOrBatch<R extends Record<string, unknown>>(
  req: EngineRequest,
  allowedTop: readonly string[],
  allowedItem: readonly string[],
  audit: Record<string, string | number | boolean | null>,
  work: (item: Body) => Promise<R>,
): Promise<EngineResponse> {
  const items = batchInput(req.body);
  if (items === undefined) {
    refuseUnknownFields(req.body, allowedTop);
    const result = await work(req.body);
    return { data: result, audit: { ...audit, ...versionFact(result) } };
  }
  refuseUnknownFields(req.body, [...allowedTop, 'batch_input']);
  // Top-level fields (hash_algorithm, key_version, …) apply to every item that does not set its own.
  const { batch_input: _items, ...defaults } = req.body;
  const outcomes: BatchOutcome<R>[] = await runBatch(items, async (item) => {
    refuseUnknownFields(item, [...allowedItem, 'reference']);
    return work({ ...defaults, ...item });
  });
  const results = outcomes.map((o, i) => {
    const reference = items[i]!.reference;
    const extra = typeof reference === 'string' ? { reference } : {};
    return o.ok ? { ...o.value, ...extra } : { error: o.error, ...extra };
  });
  const failed = outcomes.filter((o) => !o.ok).length;
  // Vault: 400 only when every item failed; partial failures are 200 with per-item errors.
  return {
    ...(failed === items.length ? { status: 400 } : {}),
    data: { batch_results: results },
    audit: { ...audit, batch_size: items.length, batch_failed: failed },
  };
}

function versionFact(result: Record<string, unknown>): Record<string, number> {
  return typeof result.key_version === 'number' ? { key_version: result.key_version } : {};
}

export async function encryptRoute(req: EngineRequest, keys: TransitKeys, ref: TransitKeyRef): Promise<EngineResponse> {
  const type = parseKeyType(optionalString(req.body, 'type'));
  // As in Vault, a key created by this upsert is derived when the request carries a context, so
  // the caller's context binds its ciphertexts from the first one on.
  const first = batchInput(req.body)?.[0] ?? req.body;
  const derived = (base64Field(first, 'context')?.length ?? base64Field(req.body, 'context')?.length ?? 0) > 0;
  const key = await keys.openOrCreate(ref, { type, derived, exportable: false, allowPlaintextBackup: false });
  const fields = ['plaintext', 'context', 'associated_data', 'key_version'];
  return singleOrBatch(req, [...fields, 'type'], fields, { key: ref.name }, async (item) => {
    const result = await encrypt(key, {
      plaintext: requiredBase64(item, 'plaintext'),
      context: base64Field(item, 'context'),
      associatedData: base64Field(item, 'associated_data'),
      keyVersion: optionalInt(item, 'key_version'),
    });
    return { ciphertext: result.ciphertext, key_version: result.keyVersion };
  });
}

export async function decryptRoute(req: EngineRequest, key: OpenKey): Promise<EngineResponse> {
  const fields = ['ciphertext', 'context', 'associated_data'];
  return singleOrBatch(req, fields, fields, { key: key.record.name }, async (item) => {
    const { plaintext } = await decrypt(key, {
      ciphertext: requiredString(item, 'ciphertext'),
      context: base64Field(item, 'context'),
      associatedData: base64Field(item, 'associated_data'),
    });
    return { plaintext: plaintext.toString('base64') };
  });
}

export async function rewrapRoute(req: EngineRequest, key: OpenKey): Promise<EngineResponse> {
  const fields = ['ciphertext', 'context', 'associated_data', 'key_version'];
  return singleOrBatch(req, fields, fields, { key: key.record.name }, async (item) => {
    const result = await rewrap(key, {
      ciphertext: requiredString(item, 'ciphertext'),
      context: base64Field(item, 'context'),
      associatedData: base64Field(item, 'associated_data'),
      keyVersion: optionalInt(item, 'key_version'),
    });
    return { ciphertext: result.ciphertext, key_version: result.keyVersion };
  });
}

export async function dataKeyRoute(req: EngineRequest, key: OpenKey, withPlaintext: boolean): Promise<EngineResponse> {
  refuseUnknownFields(req.body, ['bits', 'context', 'key_version']);
  const result = await generateDataKey(key, {
    bits: optionalInt(req.body, 'bits') ?? 256,
    context: base64Field(req.body, 'context'),
    keyVersion: optionalInt(req.body, 'key_version'),
  });
  const data = {
    ...(withPlaintext ? { plaintext: result.plaintext.toString('base64') } : {}),
    ciphertext: result.ciphertext,
    key_version: result.keyVersion,
  };
  result.plaintext.fill(0);
  return { data, audit: { key: key.record.name, key_version: result.keyVersion, plaintext_returned: withPlaintext } };
}

const SIGN_FIELDS = ['input', 'hash_algorithm', 'prehashed', 'signature_algorithm', 'marshaling_algorithm', 'key_version', 'context'];

export async function signRoute(req: EngineRequest, key: OpenKey, pathHash: string | undefined): Promise<EngineResponse> {
  return singleOrBatch(req, SIGN_FIELDS, ['input', 'context'], { key: key.record.name }, async (item) => {
    const result = await signInput(key, {
      input: requiredBase64(item, 'input'),
      hashAlgorithm: pathHash ?? optionalString(item, 'hash_algorithm'),
      prehashed: optionalBool(item, 'prehashed'),
      signatureAlgorithm: optionalString(item, 'signature_algorithm'),
      marshalingAlgorithm: optionalString(item, 'marshaling_algorithm'),
      keyVersion: optionalInt(item, 'key_version'),
    });
    return { signature: result.signature, key_version: result.keyVersion };
  });
}

export async function verifyRoute(req: EngineRequest, key: OpenKey, pathHash: string | undefined): Promise<EngineResponse> {
  const fields = ['input', 'signature', 'hmac', 'hash_algorithm', 'prehashed', 'signature_algorithm', 'marshaling_algorithm', 'context'];
  return singleOrBatch(req, fields, ['input', 'signature', 'hmac', 'context'], { key: key.record.name }, async (item) => {
    const input = requiredBase64(item, 'input');
    const hmac = optionalString(item, 'hmac');
    const signature = optionalString(item, 'signature');
    if ((hmac === undefined) === (signature === undefined)) throw new TransitError('transit.invalid_request', 'send exactly one of signature and hmac');
    const hashAlgorithm = pathHash ?? optionalString(item, 'hash_algorithm');
    const valid =
      hmac !== undefined
        ? await verifyHmac(key, { input, hmac, algorithm: hashAlgorithm })
        : await verifySignature(key, {
            input,
            signature: signature!,
            hashAlgorithm,
            prehashed: optionalBool(item, 'prehashed'),
            signatureAlgorithm: optionalString(item, 'signature_algorithm'),
            marshalingAlgorithm: optionalString(item, 'marshaling_algorithm'),
          });
    return { valid };
  });
}

export async function hmacRoute(req: EngineRequest, key: OpenKey, pathHash: string | undefined): Promise<EngineResponse> {
  return singleOrBatch(req, ['input', 'algorithm', 'key_version'], ['input'], { key: key.record.name }, async (item) => {
    const result = await computeHmac(key, {
      input: requiredBase64(item, 'input'),
      algorithm: pathHash ?? optionalString(item, 'algorithm'),
      keyVersion: optionalInt(item, 'key_version'),
    });
    return { hmac: result.hmac, key_version: result.keyVersion };
  });
}

export async function randomRoute(req: EngineRequest, pathBytes: string | undefined): Promise<EngineResponse> {
  refuseUnknownFields(req.body, ['bytes', 'format', 'source']);
  const bytes = pathBytes !== undefined ? optionalInt({ bytes: pathBytes }, 'bytes') : optionalInt(req.body, 'bytes');
  return { data: { random_bytes: generateRandom(bytes, optionalString(req.body, 'format')) }, audit: { bytes: bytes ?? 32 } };
}

export async function hashRoute(req: EngineRequest, pathAlgorithm: string | undefined): Promise<EngineResponse> {
  refuseUnknownFields(req.body, ['input', 'algorithm', 'format']);
  const algorithm = pathAlgorithm ?? optionalString(req.body, 'algorithm');
  return { data: { sum: hashInput(requiredBase64(req.body, 'input'), algorithm, optionalString(req.body, 'format')) }, audit: { algorithm: algorithm ?? 'sha2-256' } };
}
