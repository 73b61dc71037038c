/** Storage for the barrier keyring: one sealed blob. */
export interface KeyringStore {
  /** Returns undefined before the barrier was first initialized. */
  load(): Promise<string | undefined>;
  /** Stores the blob only if none exists yet; returns false when another writer got there first. */
  initialize(ciphertext: string, at: string): Promise<boolean>;
}
