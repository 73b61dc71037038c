/**
 * Child process for test/store/sqlite-durable-commit.test.ts: opens a file store, commits enough
 * writes to start the WAL checkpoint worker, closes the store and lets the process end on its
 * own. A close that waits on the worker without keeping the process alive ends it early with
 * Node's exit code 13 (unsettled top-level await) instead of 0.
 */
import { sql } from 'kysely';
import { openDatabase } from '../../src/store/database.js';
import { CHECKPOINT_WORKER_AFTER_COMMITS } from '../../src/store/sqlite-checkpointer.js';

const store = await openDatabase({ dataDir: process.argv[2] as string });
await sql`create table probe (id integer primary key)`.execute(store.db);
for (let i = 0; i <= CHECKPOINT_WORKER_AFTER_COMMITS; i++) await sql`insert into probe (id) values (${i})`.execute(store.db);
await store.close();
process.stdout.write('closed\n');
