/** True for a primary-key or unique-constraint violation on either engine. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string } | undefined;
  // PostgreSQL SQLSTATE 23505 unique_violation; better-sqlite3 SQLITE_CONSTRAINT_* codes.
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}
