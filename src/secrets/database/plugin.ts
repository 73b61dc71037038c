/**
 * The engine's view of a target database: what the PostgreSQL plugin implements. Statements
 * arrive rendered (placeholders filled, values quoted by statements.ts). `secrets` are values that
 * must never appear in an error message (the generated or root password): the plugin removes
 * them from what the database says before passing it on.
 */
export interface DatabasePlugin {
  /** Logs in and runs a trivial query; throws `database.unavailable` when that fails. */
  verify(url: string): Promise<void>;
  /**
   * Runs `statements` in one transaction and leaves it open, so the caller can commit it only
   * once its own record (the lease) is written, and roll it back otherwise.
   */
  begin(url: string, statements: readonly string[], secrets: readonly string[]): Promise<PendingChange>;
  /** Runs `statements` in one transaction and commits it. */
  execute(url: string, statements: readonly string[], secrets: readonly string[]): Promise<void>;
  /**
   * The default revocation of a dynamic user: ends its sessions, hands what it owns to the
   * connection's user, drops its privileges and drops the role. Succeeds when the role is gone.
   */
  dropUser(url: string, username: string): Promise<void>;
  /** {@link dropUser} for many users in one transaction (the expiry worker's batches). */
  dropUsers(url: string, usernames: readonly string[]): Promise<void>;
  /** True when a role of that name exists. */
  userExists(url: string, username: string): Promise<boolean>;
  /** Forgets pooled connections made with `url` (after its password changed). */
  forget(url: string): Promise<void>;
  close(): Promise<void>;
}

export interface PendingChange {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}
