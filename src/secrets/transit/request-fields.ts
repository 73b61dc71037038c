import { TransitError } from '../../core/errors.js';
import { optionalString } from '../fields.js';
import { decodeBase64Strict } from './ciphertext.js';

type Body = Readonly<Record<string, unknown>>;

/**
 * The transit-specific reads of an untrusted Vault request body (numbers, booleans and short
 * strings go through src/secrets/fields.ts). Payload strings (plaintext, ciphertext, input) are
 * bounded by the server's body limit, not by a field limit.
 */
const PAYLOAD_LIMIT = Number.MAX_SAFE_INTEGER;

/** Unknown fields are refused rather than ignored, so a misspelt `key_version` never silently means "latest". */
export function refuseUnknownFields(body: Body, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new TransitError('transit.invalid_request', `unknown field(s): ${unknown.join(', ')}`);
}

export function payloadString(body: Body, field: string): string | undefined {
  return optionalString(body, field, PAYLOAD_LIMIT);
}

/** A base64 field (`plaintext`, `input`, `context`); `''` is an empty value, not a missing one. */
export function base64Field(body: Body, field: string): Buffer | undefined {
  const value = payloadString(body, field);
  if (value === undefined) return undefined;
  const bytes = decodeBase64Strict(value);
  if (!bytes) throw new TransitError('transit.invalid_request', `${field} must be standard base64`);
  return bytes;
}

export function requiredBase64(body: Body, field: string): Buffer {
  const value = base64Field(body, field);
  if (value === undefined) throw new TransitError('transit.invalid_request', `missing ${field}`);
  return value;
}

export function requiredString(body: Body, field: string): string {
  const value = payloadString(body, field);
  if (value === undefined || value === '') throw new TransitError('transit.invalid_request', `missing ${field}`);
  return value;
}

/** `batch_input` as a list of objects, or undefined when the request is a single item. */
export function batchInput(body: Body): Body[] | undefined {
  const value = body.batch_input;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'object' && item !== null && !Array.isArray(item))) {
    throw new TransitError('transit.invalid_request', 'batch_input must be a list of objects');
  }
  return value as Body[];
}
