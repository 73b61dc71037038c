/**
 * Encrypts and decrypts records' secret material; the secrets barrier implements it. Capabilities
 * take this role instead of the barrier itself, so they never hold a key. The tenant and the
 * record id are bound to the ciphertext: it opens only under the same pair.
 */
export interface Sealer {
  encrypt(tenant: string, recordId: string, plaintext: Uint8Array): string;
  decrypt(tenant: string, recordId: string, ciphertext: string): Uint8Array;
}
