import { type ControlledTransaction, type Kysely, type KyselyPlugin, sql } from 'kysely';
import { StoreError } from '../core/errors.js';
import type { Database } from './schema.js';

/** The store ports one transaction binds; `stores.ts` supplies them (kept abstract to avoid an import cycle). */
export type BindStores<S> = (db: Kysely<Database>) => S;

export interface GroupCommitOptions {
  /** Callers' works in one BEGIN … COMMIT. Bounds how long the first caller of a batch waits for the last. */
  readonly maxBatch?: number;
  /**
   * Callers that may wait for a batch before `transact` refuses with `store.pushback` (503 with
   * Retry-After, like `audit.pushback`): past it, a caller would wait longer than a client's
   * timeout anyway, and an unbounded queue turns overload into memory exhaustion.
   */
  readonly maxWaiting?: number;
  /** Called once per batch that reached COMMIT, with its number of committed works, for metrics. */
  readonly onBatch?: (committed: number, ok: boolean) => void;
}

/** The state of one work: its stores refuse statements once it has settled. */
interface Running {
  settled: boolean;
}

/**
 * Works running now, per database: two committers of one database (one per transactor, as tests
 * make them) share its connection, so a work of one that calls the other waits on itself as well.
 */
const running = new WeakMap<Kysely<Database>, number>();

/**
 * The frame every work runs under. A `transact` whose stack (V8's async stack trace included:
 * https://v8.dev/docs/stack-trace-api, "Async stack traces") passes through it was called from
 * inside a work.
 *
 * This replaces an AsyncLocalStorage: on Node 20 an AsyncLocalStorage installs promise hooks that
 * run for every promise of the process, and they cost 18 % of a KV read's CPU (198 → 162 µs per
 * read in-process, bench/README.md). The stack is captured only when a `transact` arrives while a
 * work of the same database is running, i.e. only for writes that queue behind a batch.
 * Limits: a call made from an event or timer callback that the work waits for, or through a
 * custom thenable, leaves no async frames, so it is not recognised and waits on itself, as any
 * work that breaks the contract below by waiting on something outside the batch would (awaited
 * calls, `.then` chains that are awaited, `Promise.all`/`allSettled`/`race`/`any` and async
 * generators are recognised). With several databases in one process, a work of one that calls
 * `transact` on another while that other runs a work is refused too, as the frame names no
 * database.
 */
async function rampartGroupCommitWork<T>(work: () => Promise<T>): Promise<T> {
  return await work();
}

const WORK_FRAME = rampartGroupCommitWork.name;

function calledFromWork(): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 100;
  const trace: { stack?: string } = {};
  Error.captureStackTrace(trace, calledFromWork);
  Error.stackTraceLimit = limit;
  return trace.stack?.includes(WORK_FRAME) ?? false;
}

interface Waiter<S> {
  readonly work: (stores: S) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** The savepoint of the work being run; works of a batch run one after another, so one name suffices. */
const SAVEPOINT = 'rampart_work';

/**
 * Group commit of whole write transactions: what `src/audit/log.ts` does for audit rows, done
 * for every state change with its audit event.
 *
 * On SQLite each COMMIT is an fsync of the WAL (./sqlite-durable-commit.ts), and a transaction per request
 * makes the disk's flush rate the server's write rate. Here, works that arrive while a batch is
 * being written wait for the next one; a batch is one `BEGIN … COMMIT` in which each
 * work runs inside its own SAVEPOINT:
 * - a work that throws is rolled back to its savepoint and gets its own error at once; the
 *   works before and after it in the batch are unaffected;
 * - every other work's promise settles only when COMMIT has returned, i.e. when the batch is on
 *   disk; if COMMIT fails, every work of the batch fails and none of it is visible (SQLite and
 *   PostgreSQL roll back a transaction whose COMMIT failed). Nothing acknowledged is lost and
 *   nothing unacknowledged is reported as done;
 * - should a statement leave the transaction unusable (on SQLITE_FULL, SQLITE_IOERR or
 *   SQLITE_NOMEM SQLite may roll back the whole transaction, https://www.sqlite.org/lang_transaction.html
 *   "Response To Errors Within A Transaction"; a PostgreSQL connection may drop), ROLLBACK TO
 *   fails: the works already run fail with `store.unavailable`, as after a failed COMMIT, the
 *   failing work gets its own error, and the works not yet run go on to the next batch.
 * An idle committer starts a batch for the first caller on the event loop's next turn (no timer;
 * see `#schedule`); callers that arrive until its works have run join it, up to `maxBatch`, so a
 * batch holds the writer for at most `maxBatch` works plus one COMMIT, and a caller waits for at
 * most the batch being written and its own.
 *
 * Visibility. A work sees the changes of the works before it in its batch before they are
 * durable; that is safe because it is acknowledged only with them (same COMMIT) or not at all.
 * Nothing outside the batch can see them: on SQLite, Kysely's driver hands its single
 * better-sqlite3 connection to one user at a time (a mutex held from acquisition to release),
 * and the batch holds it from BEGIN until COMMIT has returned, so every other read — another
 * request's, the audit log's appends, the expiry worker's — runs either before BEGIN or after
 * the batch is durable. On PostgreSQL other sessions see committed rows only, and a commit that
 * returned (`synchronous_commit = on`) is durable. A read therefore never observes a row that a
 * crash could take back.
 *
 * A work owns its stores only until its promise settles. They are bound to the transaction
 * through a plugin and an executor of their own that refuse every statement issued after that (a `Promise.all` branch still
 * running when another branch threw): otherwise such a statement would run after the rollback to
 * the work's savepoint, or inside the next work's, and commit with the batch although its caller
 * was told it failed. Statements issued before are already queued on the transaction's single
 * connection (Kysely's SingleConnectionProvider runs them in order), so the ROLLBACK TO or
 * RELEASE that ends the work runs after them.
 *
 * Contract for works: they run while the batch holds the writer (on SQLite, the only
 * connection), so they must not wait on slow I/O outside the store (a remote database, a KMS,
 * the network) — do that before `transact` — and must not call `transact` or read through a
 * store not bound to their transaction (on SQLite either waits on itself). A nested `transact`
 * is refused with an error rather than left to hang the server; a read through another store
 * cannot be told apart from another request's, so it still hangs: run such reads before
 * `transact` (as routes.ts does for a wrapped read).
 */
export class GroupCommitter<S> {
  readonly #db: Kysely<Database>;
  readonly #bind: BindStores<S>;
  readonly #maxBatch: number;
  readonly #maxWaiting: number;
  readonly #onBatch: ((committed: number, ok: boolean) => void) | undefined;
  #queue: Waiter<S>[] = [];
  #running = false;

  constructor(db: Kysely<Database>, bind: BindStores<S>, options: GroupCommitOptions = {}) {
    this.#db = db;
    this.#bind = bind;
    this.#maxBatch = options.maxBatch ?? 64;
    this.#maxWaiting = options.maxWaiting ?? 10_000;
    this.#onBatch = options.onBatch;
  }

  /** Runs `work` in the next batch; resolves with its result once the batch is durable. */
  transact<T>(work: (stores: S) => Promise<T>): Promise<T> {
    if ((running.get(this.#db) ?? 0) > 0 && calledFromWork()) {
      return Promise.reject(new Error('transact was called inside a transaction work of the same store: the batch would wait on itself; use the stores the work was given'));
    }
    if (this.#queue.length >= this.#maxWaiting) {
      return Promise.reject(new StoreError('store.pushback', 'too many writes are waiting for the store; retry later'));
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#running) this.#schedule();
    });
  }

  /**
   * Starts the next batch after the event loop's current turn: better-sqlite3 runs statements
   * synchronously on this thread, so requests that arrived meanwhile
   * are read from their sockets only when the loop turns, and a batch started at once would
   * almost always hold one work. One turn (`setImmediate`, as the audit log does) lets them reach
   * the queue first; it adds no timer, and an idle server answers a lone request as before.
   */
  #schedule(): void {
    this.#running = true;
    setImmediate(() => {
      void this.#batch().finally(() => {
        if (this.#queue.length > 0) this.#schedule();
        else this.#running = false;
      });
    });
  }

  async #batch(): Promise<void> {
    const done: { waiter: Waiter<S>; value: unknown }[] = [];
    let current: Waiter<S> | undefined;
    let trx: ControlledTransaction<Database> | undefined;
    try {
      trx = await this.#db.startTransaction().execute();
      let ran = 0;
      while (ran < this.#maxBatch && this.#queue.length > 0) {
        const waiter = (current = this.#queue.shift()!);
        ran++;
        await sql.raw(`savepoint ${SAVEPOINT}`).execute(trx);
        let value: unknown;
        try {
          value = await this.#run(trx, waiter);
        } catch (err) {
          current = undefined;
          await this.#undo(trx, waiter, err);
          waiter.reject(err);
          continue;
        }
        await sql.raw(`release savepoint ${SAVEPOINT}`).execute(trx);
        done.push({ waiter, value });
        current = undefined;
      }
      await trx.commit().execute();
    } catch (err) {
      // Also releases the connection, even when ROLLBACK itself fails (the COMMIT that failed
      // may have ended the transaction already).
      if (trx && !trx.isCommitted && !trx.isRolledBack) await trx.rollback().execute().catch(() => undefined);
      this.#onBatch?.(done.length, false);
      const failure = err instanceof BatchBroken ? err.failure : new StoreError('store.unavailable', 'the transaction could not be committed', { cause: err });
      // A batch that could not even begin (the store is closed or locked) fails the callers it
      // would have taken, so that a dead store cannot keep the queue spinning.
      const failed = trx ? done.map((d) => d.waiter) : this.#queue.splice(0, this.#maxBatch);
      if (current) failed.push(current);
      for (const w of failed) w.reject(failure);
      return;
    }
    this.#onBatch?.(done.length, true);
    for (const d of done) d.waiter.resolve(d.value);
  }

  /**
   * Runs one work on stores that refuse statements once it has settled. They are bound to a
   * Kysely Transaction, so stores that open their own transaction when handed a plain connection
   * (policy-store.ts) see that they are already inside one.
   */
  async #run(trx: ControlledTransaction<Database>, waiter: Waiter<S>): Promise<unknown> {
    const state: Running = { settled: false };
    const guard: KyselyPlugin = {
      transformQuery(args) {
        refuseSettled(state);
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    const db = trx.withPlugin(guard);
    // Queries compiled ahead (prepared-query.ts) reach the executor without passing the plugins'
    // transformQuery: its own executor (new with each withPlugin) refuses them as well.
    const executor = db.getExecutor();
    const execute = executor.executeQuery.bind(executor);
    executor.executeQuery = async (query) => {
      refuseSettled(state);
      return execute(query);
    };
    running.set(this.#db, (running.get(this.#db) ?? 0) + 1);
    try {
      return await rampartGroupCommitWork(() => waiter.work(this.#bind(db)));
    } finally {
      state.settled = true;
      running.set(this.#db, (running.get(this.#db) ?? 1) - 1);
    }
  }

  /**
   * Rolls one work back to its savepoint. When that is impossible (the statement that failed
   * took the whole transaction with it), the work gets its own error and the batch is lost.
   */
  async #undo(trx: ControlledTransaction<Database>, waiter: Waiter<S>, cause: unknown): Promise<void> {
    try {
      await sql.raw(`rollback to savepoint ${SAVEPOINT}`).execute(trx);
      await sql.raw(`release savepoint ${SAVEPOINT}`).execute(trx);
    } catch (err) {
      waiter.reject(cause);
      throw new BatchBroken(new StoreError('store.unavailable', 'the transaction was aborted by a failed statement', { cause: err }));
    }
  }
}

function refuseSettled(state: Running): void {
  if (state.settled) throw new Error('a statement was issued after its transaction work had settled; it was not run');
}

class BatchBroken extends Error {
  constructor(readonly failure: StoreError) {
    super(failure.message);
  }
}
