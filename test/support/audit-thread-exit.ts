/**
 * Child process for test/store/sqlite-audit-thread.test.ts: opens a file store with the audit
 * thread started, then either leaves it idle and never closes it (`idle`: an idle thread must not
 * keep the process alive, so the process ends by itself with code 0) or integrates through it
 * and closes it, after the answer (`close`) or while it is due (`in-flight`): a close that waited
 * on the thread without keeping the process alive would end it early with Node's exit code 13,
 * unsettled top-level await.
 */
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { openDatabase } from '../../src/store/database.js';
import { SqliteAuditThread } from '../../src/store/sqlite-audit-thread.js';

const [dataDir, mode] = process.argv.slice(2) as [string, 'idle' | 'close' | 'in-flight'];
const database = await openDatabase({ dataDir });
const thread = new SqliteAuditThread({ ...database.sqliteFile!, store: new SqlAuditStore(database.db, 'sqlite'), startAfter: 0 });
if (mode === 'idle') {
  process.stdout.write(`started ${thread.running}\n`);
} else {
  const integrating = thread.integrate(10, new Date(0).toISOString());
  if (mode === 'close') await integrating;
  await thread.close();
  await integrating;
  await database.close();
  process.stdout.write('closed\n');
}
