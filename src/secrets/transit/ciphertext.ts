/**
 * Vault's versioned value format, shared by ciphertexts, signatures and HMACs:
 * `vault:v<version>:<payload>`. For AEAD ciphertexts the payload is base64(nonce ‖ ciphertext ‖
 * tag), byte for byte the layout Vault's transit engine writes.
 */
const VERSIONED = /^vault:v([1-9][0-9]{0,8}):(.*)$/s;

export function formatVersioned(version: number, payload: string): string {
  return `vault:v${version}:${payload}`;
}

/** Returns undefined when `value` is not `vault:v<positive integer>:<payload>`. */
export function parseVersioned(value: string): { version: number; payload: string } | undefined {
  const m = VERSIONED.exec(value);
  if (!m) return undefined;
  return { version: Number(m[1]), payload: m[2]! };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict standard base64 (RFC 4648 §4): padding required and the unused bits of the last symbol
 * zero. Node's decoder skips bad characters and ignores those bits, so without this check two
 * different strings would decode to the same bytes and a flipped bit could go unnoticed.
 * Returns undefined for anything else.
 */
export function decodeBase64Strict(value: string): Buffer | undefined {
  if (!BASE64.test(value)) return undefined;
  const bytes = Buffer.from(value, 'base64');
  return bytes.toString('base64') === value ? bytes : undefined;
}

/** base64url without padding (RFC 4648 §5), as JWS uses; undefined for anything else. */
export function decodeBase64UrlStrict(value: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(value)) return undefined;
  const bytes = Buffer.from(value, 'base64url');
  return bytes.toString('base64url') === value ? bytes : undefined;
}
