import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Creates a throwaway PostgreSQL database next to `adminUrl` (whose user may create databases)
 * and returns its URL and a `drop` that removes it, connections and all.
 */
export async function createThrowawayDatabase(adminUrl: string, prefix = 'rampart_test'): Promise<{ url: string; drop(): Promise<void> }> {
  const dbName = `${prefix}_${randomBytes(6).toString('hex')}`;
  const run = async (statement: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await run(`create database ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  return { url: url.toString(), drop: () => run(`drop database if exists ${dbName} with (force)`) };
}
