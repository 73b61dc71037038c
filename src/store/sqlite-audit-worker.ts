/**
 * The audit thread's worker (./sqlite-audit-thread.ts): its own connection to the SQLite file,
 * integrating pending rows and checking new leaves before a checkpoint, one request at a time.
 * Loaded only as a worker's entry module.
 */

import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { type BadLeaf, extendFromStore } from '../audit/checkpointer.js';
import { integratePendingIn, integrationOf } from '../audit/integration.js';
import { CompactRange } from '../audit/merkle.js';
import { type ErrorCode, RampartError } from '../core/errors.js';
import { SqlAuditStore } from './audit-store.js';
import { WAL_SIZE_LIMIT_BYTES } from './sqlite-checkpointer.js';
import { withStatementCache } from './sqlite-statement-cache.js';
import { WriteLock } from './sqlite-write-lock.js';
import type { Database } from './schema.js';

export type AuditThreadRequest =
  | { readonly id: number; readonly op: 'integrate'; readonly limit: number; readonly at: string }
  | { readonly id: number; readonly op: 'extend'; readonly frontier: string; readonly size: number };

export type AuditThreadReply =
  | { readonly id: number; readonly count: number }
  | { readonly id: number; readonly frontier: string }
  | { readonly id: number; readonly bad: BadLeaf }
  /** A failure; `code` and `details` when it was a RampartError, so the event loop sees the same code. */
  | { readonly id: number; readonly error: string; readonly code?: ErrorCode; readonly details?: Record<string, unknown> };

interface WorkerData {
  readonly path: string;
  readonly lock: SharedArrayBuffer;
}

/** Rows per transaction: what an append on the event loop may have to wait for. */
const TXN_ROWS = 16;

/**
 * Integrates up to `limit` rows in transactions of {@link TXN_ROWS}, and stops at the first partial one
 * (caught up). Each batch is read and hashed before the write lock is taken, so the lock is held
 * for the batch's writes and COMMIT only: what an append on the event loop may wait for. Should
 * the tree have moved meanwhile (no other integrator runs while this thread does, but the store
 * does not rely on it), the batch is done again under the lock.
 */
async function integrate(store: SqlAuditStore, lock: WriteLock, limit: number, at: string): Promise<number> {
  let done = 0;
  while (done < limit) {
    const want = Math.min(TXN_ROWS, limit - done);
    const basis = await store.treeState();
    const pending = await store.pendingEntries(want);
    if (pending.length === 0) break;
    const result = integrationOf(basis, pending, at);
    let n = pending.length;
    lock.acquireBlocking();
    try {
      if (!(await store.applyIntegration(basis, result))) {
        n = await integratePendingIn(store, want, at);
      }
    } finally {
      lock.release();
    }
    done += n;
    if (n < want) break;
  }
  return done;
}

async function extend(store: SqlAuditStore, frontier: string, size: number): Promise<{ frontier: string } | { bad: BadLeaf }> {
  const range = CompactRange.fromJSON(JSON.parse(frontier));
  const bad = await extendFromStore(store, range, size);
  return bad ? { bad } : { frontier: JSON.stringify(range.toJSON()) };
}

if (parentPort) {
  const port = parentPort;
  const { path, lock: buffer } = workerData as WorkerData;
  const lock = new WriteLock(buffer);
  const sqlite = new SqliteDatabase(path, { fileMustExist: true });
  // No fsync of its own: integration is a pure function of rows already durable, and the WAL is
  // lost only from its end, so the event loop's next flushed commit (a checkpoint, a request's
  // audit event) makes durable any integration it has read (docs/audit.md, "The audit thread").
  // An fsync here contended with the event loop's flushes of the same file.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // Checkpoints are the WAL checkpointer's (./sqlite-checkpointer.ts); one run inside this
  // thread's COMMIT would hold the write lock, and every append behind it, for milliseconds.
  sqlite.pragma('wal_autocheckpoint = 0');
  sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  const store = new SqlAuditStore(db, 'sqlite');
  let queue = Promise.resolve();
  port.on('message', (request: AuditThreadRequest | { readonly op: 'close' }) => {
    queue = queue.then(async () => {
      if (request.op === 'close') {
        await db.destroy();
        port.close();
        return;
      }
      let reply: AuditThreadReply;
      try {
        reply =
          request.op === 'integrate'
            ? { id: request.id, count: await integrate(store, lock, request.limit, request.at) }
            : { id: request.id, ...(await extend(store, request.frontier, request.size)) };
      } catch (err) {
        reply =
          err instanceof RampartError
            ? { id: request.id, error: err.message, code: err.code, ...(err.details ? { details: err.details } : {}) }
            : { id: request.id, error: err instanceof Error ? err.message : String(err) };
      }
      try {
        port.postMessage(reply);
      } catch {
        // Details that cannot be cloned (never expected: they are plain data) must not stop the thread.
        port.postMessage({ id: request.id, error: 'error' in reply ? reply.error : 'the reply could not be sent', ...('code' in reply && reply.code ? { code: reply.code } : {}) });
      }
    });
  });
}
