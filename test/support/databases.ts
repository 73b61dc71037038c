import { createThrowawayDatabase } from './throwaway-database.js';

/**
 * The stores every store-level suite runs against. SQLite always; PostgreSQL when
 * RAMPART_TEST_DATABASE_URL names a server (CI sets it and requires it). Each PostgreSQL use gets
 * a throwaway database, dropped afterwards, so suites never see each other's rows.
 */
export interface TestDatabase {
  readonly name: 'sqlite' | 'postgres';
  /** Creates a fresh, empty database; returns its URL (undefined for SQLite) and a cleanup. */
  create(): Promise<{ url: string | undefined; drop(): Promise<void> }>;
}

const PG_URL = process.env.RAMPART_TEST_DATABASE_URL;

if (!PG_URL && process.env.CI) {
  throw new Error('CI requires the PostgreSQL half of the store tests: set RAMPART_TEST_DATABASE_URL');
}
if (!PG_URL && !(globalThis as { __rampartPgNotice?: boolean }).__rampartPgNotice) {
  (globalThis as { __rampartPgNotice?: boolean }).__rampartPgNotice = true;
  process.stderr.write(
    'PostgreSQL store tests skipped: set RAMPART_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run them\n',
  );
}

const sqlite: TestDatabase = {
  name: 'sqlite',
  async create() {
    return { url: undefined, drop: async () => undefined };
  },
};

const postgres = (adminUrl: string): TestDatabase => ({
  name: 'postgres',
  create: () => createThrowawayDatabase(adminUrl),
});

export const TEST_DATABASES: readonly TestDatabase[] = PG_URL ? [sqlite, postgres(PG_URL)] : [sqlite];
