import { randomInt } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes (manual §4.1.1). */
const MAX_IDENTIFIER = 63;

function randomString(length: number, alphabet: string): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/**
 * A dynamic user's name in Vault's default PostgreSQL template
 * `v-<display name ≤8>-<role ≤8>-<20 random>-<unix time>`, cut to 63 characters. Only
 * `[A-Za-z0-9_-]` survive from the caller-chosen parts, so the name is safe anywhere.
 */
export function generateUsername(displayName: string, role: string, now: Date): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 8);
  const parts = ['v', clean(displayName) || 'token', clean(role) || 'role', randomString(20, ALNUM), String(Math.floor(now.getTime() / 1000))];
  return parts.join('-').slice(0, MAX_IDENTIFIER);
}

/**
 * A password of Vault's default policy shape: 20 characters of `[A-Za-z0-9-]` with at least one
 * lowercase letter, uppercase letter and digit (about 119 bits from the CSPRNG).
 */
export function generatePassword(): string {
  for (;;) {
    const p = randomString(20, `${ALNUM}-`);
    if (/[a-z]/.test(p) && /[A-Z]/.test(p) && /[0-9]/.test(p)) return p;
  }
}
