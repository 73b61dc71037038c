export type CaRole = 'root' | 'intermediate';

export interface CaRecord {
  readonly id: string;
  readonly tenant: string;
  readonly role: CaRole;
  readonly certificatePem: string;
  /** Barrier ciphertext of the PKCS#8 key; null when the key lives outside the server. */
  readonly privateKey: string | null;
  readonly algorithm: string;
  readonly status: 'active' | 'retired';
  readonly notAfter: string;
  readonly createdAt: string;
}

/** Storage for CA certificates and their sealed keys. */
export interface CaStore {
  insert(record: CaRecord): Promise<void>;
  /** Active CAs of a role, newest first. */
  active(role: CaRole): Promise<CaRecord[]>;
}
