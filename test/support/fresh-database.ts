import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import type { TestDatabase } from './databases.js';

/**
 * Opens a fresh, migrated database of `target` for the enclosing describe block (a WAL SQLite
 * file in a temporary directory, or a throwaway PostgreSQL database) and removes it afterwards.
 * Returns an accessor, valid once `beforeAll` has run.
 */
export function freshDatabase(target: TestDatabase): () => StoreDatabase {
  let database: StoreDatabase | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), `rampart-${target.name}-`));
    const { url, drop } = await target.create();
    cleanup = async () => {
      await database?.close();
      await drop();
      rmSync(dataDir, { recursive: true, force: true });
    };
    database = await openDatabase({ databaseUrl: url, dataDir });
  });
  afterAll(async () => {
    await cleanup?.();
  });
  return () => {
    if (!database) throw new Error('database not opened');
    return database;
  };
}
