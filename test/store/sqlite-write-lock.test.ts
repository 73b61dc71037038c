import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { LOOP, WORKER, WriteLock } from '../../src/store/sqlite-write-lock.js';

/**
 * The write lock shared by the event loop and the audit thread (src/store/sqlite-write-lock.ts),
 * with a real second thread: mutual exclusion, the event loop first, release of a stopped
 * worker's hold, a failed store refusing the worker, and the store's writes waiting for it
 * without blocking the event loop.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A worker thread that loads the lock module from source and runs `body` (a function body over `WriteLock`, `lock`, `shared`, `port`). */
function lockWorker(lock: WriteLock, shared: Int32Array, body: string): { worker: Worker; exited: Promise<number> } {
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const module = JSON.stringify(new URL('../../src/store/sqlite-write-lock.ts', import.meta.url).href);
  const source = `
const { workerData, parentPort: port } = require('node:worker_threads');
import(${tsx}).then((tsx) => { tsx.register(); return import(${module}); }).then(({ WriteLock }) => {
  const lock = new WriteLock(workerData.lock);
  const shared = new Int32Array(workerData.shared);
  ${body}
});`;
  const worker = new Worker(source, { eval: true, workerData: { lock: lock.buffer, shared: shared.buffer } });
  return { worker, exited: new Promise((resolve) => worker.once('exit', resolve)) };
}

const message = (worker: Worker, what: string) => new Promise<void>((resolve) => worker.on('message', (m) => m === what && resolve()));

describe('the SQLite write lock', () => {
  it('lets one thread at a time into its critical section, the event loop yielding inside its own', async () => {
    const lock = new WriteLock();
    const shared = new Int32Array(new SharedArrayBuffer(8));
    const rounds = 200;
    // Both sides read the counter, let time pass, then write it back: without exclusion, updates are lost.
    const { worker, exited } = lockWorker(
      lock,
      shared,
      `for (let i = 0; i < ${rounds}; i++) {
        lock.acquireBlocking();
        const v = Atomics.load(shared, 0);
        for (let k = 0; k < 20000; k++) Atomics.load(shared, 1);
        Atomics.store(shared, 0, v + 1);
        lock.release();
      }
      port.postMessage('done');`,
    );
    const done = message(worker, 'done');
    for (let i = 0; i < rounds; i++) {
      const wait = lock.acquire();
      if (wait) await wait;
      const v = Atomics.load(shared, 0);
      await turn();
      Atomics.store(shared, 0, v + 1);
      lock.release();
    }
    await done;
    await exited;
    expect(Atomics.load(shared, 0)).toBe(2 * rounds);
  });

  it('lets a waiting event loop in before the worker takes the lock again', async () => {
    const lock = new WriteLock();
    const shared = new Int32Array(new SharedArrayBuffer(8)); // [0]: go signal, [1]: who got the lock first after the release
    const { worker, exited } = lockWorker(
      lock,
      shared,
      `lock.acquireBlocking();
      port.postMessage('held');
      Atomics.wait(shared, 0, 0);
      lock.release();
      lock.acquireBlocking();
      Atomics.compareExchange(shared, 1, 0, ${WORKER});
      lock.release();
      port.postMessage('done');`,
    );
    const done = message(worker, 'done');
    await message(worker, 'held');
    const wait = lock.acquire();
    expect(wait).toBeInstanceOf(Promise);
    Atomics.store(shared, 0, 1);
    Atomics.notify(shared, 0);
    await wait;
    Atomics.compareExchange(shared, 1, 0, LOOP);
    await turn();
    lock.release();
    await done;
    await exited;
    expect(Atomics.load(shared, 1)).toBe(LOOP);
  });

  it("frees a stopped worker's hold, and only that", async () => {
    const lock = new WriteLock();
    const shared = new Int32Array(new SharedArrayBuffer(8));
    const { exited } = lockWorker(lock, shared, `lock.acquireBlocking(); process.exit(0);`);
    await exited;
    let held = false;
    const wait = lock.acquire()!.then(() => (held = true));
    await turn();
    expect(held).toBe(false);
    lock.releaseHeldBy(LOOP); // not the holder: nothing happens
    await turn();
    expect(held).toBe(false);
    lock.releaseHeldBy(WORKER);
    await wait;
    expect(held).toBe(true);
    lock.releaseHeldBy(WORKER); // the event loop holds it now
    expect(lock.acquire()).toBeInstanceOf(Promise);
  });

  it('refuses a worker once the store failed, waking one that waits for it', async () => {
    const lock = new WriteLock();
    const shared = new Int32Array(new SharedArrayBuffer(8));
    // The worker waits while the event loop holds the lock, and reports what its wait ended in.
    const { worker, exited } = lockWorker(
      lock,
      shared,
      `port.postMessage('waiting');
      try { lock.acquireBlocking(); port.postMessage('acquired'); } catch (err) { port.postMessage(err.code); }
      try { lock.acquireBlocking(); port.postMessage('acquired'); } catch (err) { port.postMessage(err.code); }`,
    );
    const replies: string[] = [];
    worker.on('message', (m: string) => replies.push(m));
    expect(lock.acquire()).toBeUndefined();
    await message(worker, 'waiting');
    for (let i = 0; i < 5; i++) await turn();
    expect(replies).toEqual(['waiting']);
    lock.fail();
    await exited;
    // Woken by the failure while the event loop still holds the lock; refused again afterwards.
    expect(replies).toEqual(['waiting', 'store.unavailable', 'store.unavailable']);
    expect(lock.failed).toBe(true);
    lock.release();
  });

  it('makes the store wait for it, writes and transactions alike, without blocking the event loop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-lock-'));
    dirs.push(dir);
    const database = await openDatabase({ dataDir: dir });
    const db = database.db;
    await sql`create table t (id integer primary key, v text not null)`.execute(db);
    // Another thread's hold, taken through a second handle on the same memory.
    const other = new WriteLock(database.sqliteFile!.writeLock.buffer);
    other.acquireBlocking();
    let wrote = false;
    let committed = false;
    const write = db.insertInto('t' as never).values({ id: 1, v: 'a' } as never).execute().then(() => (wrote = true));
    const trx = db.transaction().execute(async (t) => sql`insert into t (id, v) values (2, 'b')`.execute(t)).then(() => (committed = true));
    // The event loop turns meanwhile (a busy handler would have held it in a sleep), and nothing
    // was written: a connection of its own sees no row.
    for (let i = 0; i < 20; i++) await turn();
    const reader = new SqliteDatabase(database.sqliteFile!.path, { readonly: true });
    expect(reader.prepare('select count(*) as n from t').get()).toEqual({ n: 0 });
    expect(wrote).toBe(false);
    expect(committed).toBe(false);
    other.release();
    await write;
    await trx;
    expect(reader.prepare('select count(*) as n from t').get()).toEqual({ n: 2 });
    reader.close();
    await database.close();
  });
});
