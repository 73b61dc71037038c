import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { isRampartError } from '../../src/core/errors.js';
import type { TokenRecord } from '../../src/identity/store.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { GroupCommitter } from '../../src/store/group-commit.js';
import type { Database } from '../../src/store/schema.js';
import { bindStores, type Stores, transactor } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * Group commit of write transactions (src/store/group-commit.ts) against every store in
 * TEST_DATABASES. The committer is driven directly on both dialects (the runtime batches on
 * SQLite only, but the savepoint protocol must hold on both); `transactor` is what the runtime
 * uses. Works queued in the same tick share a batch, which is how the tests put several works
 * into one BEGIN … COMMIT without relying on timing.
 */

const clock = new ManualClock();
const TENANT = 'gc';

function token(accessor: string, tenant = TENANT): TokenRecord {
  return {
    accessor,
    tenant,
    secretHash: 'e'.repeat(64),
    policies: ['tenant-admin'],
    displayName: accessor,
    createdBy: null,
    createdAt: clock.now().toISOString(),
    expiresAt: null,
    revokedAt: null,
  };
}

/** One request's state change and its audit event, as `ctx.transact` writes them. */
const write = (accessor: string) => async (s: Stores) => {
  await s.tokens.insert(token(accessor));
  await s.audit.insert([{ tenant: TENANT, recordedAt: clock.now().toISOString(), payload: JSON.stringify({ accessor }) }]);
  return accessor;
};

async function auditRowsFor(database: StoreDatabase, accessor: string): Promise<number> {
  const row = await database.db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('payload', '=', JSON.stringify({ accessor }))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Makes the COMMIT of the current transaction fail after every statement in it succeeded: a
 * foreign key checked only at COMMIT (SQLite `defer_foreign_keys`), or a deferred constraint
 * trigger (PostgreSQL), as a full disk or a lost connection would at that point.
 */
async function poisonCommit(database: StoreDatabase, s: Bound): Promise<void> {
  if (database.dialect === 'sqlite') {
    await sql`pragma defer_foreign_keys = on`.execute(s.raw);
    await s.tokens.insert(token(`orphan-${Math.random()}`, 'no-such-tenant'));
    return;
  }
  await s.tenants.create({ name: 'poison', trustDomain: 'poison.rampart.local', createdAt: clock.now().toISOString() });
}

/** The stores of one batch, plus its connection for the statements a fault needs. */
type Bound = Stores & { readonly raw: Kysely<Database> };

describe.each(TEST_DATABASES)('group commit on $name', (target) => {
  let database: StoreDatabase;
  let dataDir: string;
  let url: string | undefined;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), `rampart-gc-${target.name}-`));
    ({ url, drop } = await target.create());
    database = await openDatabase({ databaseUrl: url, dataDir });
    await bindStores(database.db, database.dialect).tenants.create({ name: TENANT, trustDomain: 'gc.rampart.local', createdAt: clock.now().toISOString() });
    if (database.dialect === 'postgres') {
      await sql`create function rampart_test_poison() returns trigger language plpgsql as $$ begin raise exception 'poisoned commit'; end $$`.execute(database.db);
      await sql`create constraint trigger rampart_test_poison after insert on tenants deferrable initially deferred
        for each row when (new.name = 'poison') execute function rampart_test_poison()`.execute(database.db);
    }
  });
  afterAll(async () => {
    await database.close();
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function committer(maxBatch?: number): { gc: GroupCommitter<Bound>; batches: { committed: number; ok: boolean }[] } {
    const batches: { committed: number; ok: boolean }[] = [];
    const gc = new GroupCommitter<Bound>(database.db, (db) => ({ ...bindStores(db, database.dialect), raw: db }), {
      ...(maxBatch === undefined ? {} : { maxBatch }),
      onBatch: (committed, ok) => batches.push({ committed, ok }),
    });
    return { gc, batches };
  }

  it('rolls back only the work that throws; the rest of its batch commits', async () => {
    const { gc, batches } = committer();
    const boom = new Error('boom');
    const results = await Promise.allSettled([
      gc.transact(write('kept-1')),
      gc.transact(async (s) => {
        await write('dropped')(s);
        throw boom;
      }),
      gc.transact(write('kept-2')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBe(boom);
    expect(batches).toEqual([{ committed: 2, ok: true }]);
    const s = bindStores(database.db, database.dialect);
    expect(await s.tokens.get('kept-1')).toBeDefined();
    expect(await s.tokens.get('kept-2')).toBeDefined();
    expect(await s.tokens.get('dropped')).toBeUndefined();
    expect(await auditRowsFor(database, 'dropped')).toBe(0);
    expect(await auditRowsFor(database, 'kept-1')).toBe(1);
  });

  it('isolates a work whose statement fails from the works after it (constraint violation)', async () => {
    const { gc } = committer();
    const results = await Promise.allSettled([
      gc.transact(write('dup')),
      gc.transact(write('dup')), // primary key violation inside its own savepoint
      gc.transact(write('after-dup')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await auditRowsFor(database, 'dup')).toBe(1);
    expect(await auditRowsFor(database, 'after-dup')).toBe(1);
  });

  it('fails every work of the batch when COMMIT fails, and none of it is visible', async () => {
    const { gc, batches } = committer();
    const results = await Promise.allSettled([
      gc.transact(write('lost-1')),
      gc.transact(async (s) => {
        await write('lost-2')(s);
        await poisonCommit(database, s);
        return 'lost-2';
      }),
      gc.transact(write('lost-3')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) {
      const reason = (r as PromiseRejectedResult).reason as unknown;
      expect(isRampartError(reason) && reason.code).toBe('store.unavailable');
    }
    expect(batches).toEqual([{ committed: 3, ok: false }]);
    const s = bindStores(database.db, database.dialect);
    for (const a of ['lost-1', 'lost-2', 'lost-3']) {
      expect(await s.tokens.get(a)).toBeUndefined();
      expect(await auditRowsFor(database, a)).toBe(0);
    }
    // The committer is usable afterwards.
    await expect(gc.transact(write('after-failed-commit'))).resolves.toBe('after-failed-commit');
  });

  it('fails the works already run when a statement aborts the whole transaction, and runs the rest in the next batch', async () => {
    const { gc, batches } = committer();
    const aborted = new Error('statement took the transaction with it');
    const results = await Promise.allSettled([
      gc.transact(write('broken-1')),
      gc.transact(async (s) => {
        // What SQLITE_FULL or a lost PostgreSQL connection does to an open transaction.
        await sql`rollback`.execute(s.raw);
        throw aborted;
      }),
      gc.transact(write('broken-3')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(isRampartError((results[0] as PromiseRejectedResult).reason) && (results[0] as PromiseRejectedResult).reason.code).toBe('store.unavailable');
    expect((results[1] as PromiseRejectedResult).reason).toBe(aborted);
    expect(batches.map((b) => b.ok)).toEqual([false, true]);
    expect(await auditRowsFor(database, 'broken-1')).toBe(0);
    expect(await auditRowsFor(database, 'broken-3')).toBe(1);
  });

  it('fails the queued works when a batch cannot begin (the store is closed)', async () => {
    const closed = await openDatabase({ databaseUrl: url, dataDir: mkdtempSync(join(tmpdir(), 'rampart-gc-closed-')), inMemory: true });
    await closed.close();
    const gc = new GroupCommitter<Stores>(closed.db, (db) => bindStores(db, closed.dialect));
    const results = await Promise.allSettled([gc.transact(write('never-1')), gc.transact(write('never-2'))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as unknown;
      expect(isRampartError(reason) && reason.code).toBe('store.unavailable');
    }
  });

  it('commits nothing a failed work still issues from a branch that outlives it', async () => {
    const { gc } = committer();
    let late: Promise<void> | undefined;
    const results = await Promise.allSettled([
      gc.transact(async (s) => {
        late = (async () => {
          for (let i = 0; i < 5; i++) await s.tokens.get('nothing');
          // The audit insert is a query compiled ahead (prepared-query.ts), the token insert is not.
          await s.audit.insert([{ tenant: TENANT, recordedAt: clock.now().toISOString(), payload: JSON.stringify({ accessor: 'leaked-from-failed-work' }) }]);
          await s.tokens.insert(token('leaked-from-failed-work'));
        })();
        // The sibling branch fails first; Promise.all rejects at once, with \`late\` still writing.
        await Promise.all([
          (async () => {
            await write('fanout-refused')(s);
            throw new Error('refused');
          })(),
          late,
        ]);
      }),
      gc.transact(write('innocent')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    await expect(late).rejects.toThrow(/after its transaction work had settled/);
    const s = bindStores(database.db, database.dialect);
    expect(await s.tokens.get('leaked-from-failed-work')).toBeUndefined();
    expect(await auditRowsFor(database, 'leaked-from-failed-work')).toBe(0);
    expect(await s.tokens.get('fanout-refused')).toBeUndefined();
    expect(await auditRowsFor(database, 'innocent')).toBe(1);
  });

  it('refuses a transact nested in a work instead of waiting on itself', { timeout: 10_000 }, async () => {
    const { gc } = committer();
    const other = committer().gc; // a second committer of the same database shares its connection
    const inner = await gc.transact(async (s) => {
      await write('outer-of-nested')(s);
      const nested = await Promise.allSettled([gc.transact(write('nested-same')), other.transact(write('nested-other'))]);
      return nested.map((r) => (r.status === 'rejected' ? String((r.reason as Error).message) : 'fulfilled'));
    });
    expect(inner).toEqual([expect.stringMatching(/inside a transaction work of the same store/), expect.stringMatching(/inside a transaction work of the same store/)]);
    expect(await auditRowsFor(database, 'outer-of-nested')).toBe(1);
    // After the work has settled, a continuation it left behind may transact again.
    let after!: Promise<string>;
    await gc.transact(async () => {
      after = new Promise<void>((r) => setImmediate(r)).then(() => gc.transact(write('after-settled')));
    });
    await expect(after).resolves.toBe('after-settled');
  });

  it('recognises a nested transact however deep in awaited calls it is made', { timeout: 10_000 }, async () => {
    const { gc } = committer();
    const deep = async (n: number): Promise<string> => {
      await new Promise<void>((r) => setImmediate(r));
      if (n > 0) return deep(n - 1);
      return gc.transact(write('deeply-nested'));
    };
    const inner = await gc.transact(async (s) => {
      await write('outer-of-deep')(s);
      const [viaAll] = await Promise.allSettled([Promise.all([deep(3)])]);
      const viaAwait = await deep(5).then(() => 'fulfilled', (err: Error) => err.message);
      return [viaAll.status === 'rejected' ? String((viaAll.reason as Error).message) : 'fulfilled', viaAwait];
    });
    expect(inner).toEqual([expect.stringMatching(/inside a transaction work of the same store/), expect.stringMatching(/inside a transaction work of the same store/)]);
    expect(await auditRowsFor(database, 'deeply-nested')).toBe(0);
  });

  it('queues, and does not refuse, transacts that arrive from outside while a work is running', async () => {
    const { gc } = committer();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = gc.transact(async (s) => {
      await write('holding')(s);
      await gate;
      return 'held';
    });
    await new Promise<void>((r) => setImmediate(r));
    const queued = Array.from({ length: 5 }, (_, i) => gc.transact(write(`outside-${i}`)));
    release();
    await expect(first).resolves.toBe('held');
    await expect(Promise.all(queued)).resolves.toEqual(['outside-0', 'outside-1', 'outside-2', 'outside-3', 'outside-4']);
  });

  it('refuses callers past maxWaiting with store.pushback, and takes them again once drained', async () => {
    const batches: boolean[] = [];
    const gc = new GroupCommitter<Stores>(database.db, (db) => bindStores(db, database.dialect), { maxWaiting: 3, onBatch: (_, ok) => batches.push(ok) });
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => gc.transact(write(`capped-${i}`))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    for (const r of results.slice(3)) {
      const reason = (r as PromiseRejectedResult).reason as unknown;
      expect(isRampartError(reason) && reason.code).toBe('store.pushback');
    }
    expect(await auditRowsFor(database, 'capped-3')).toBe(0);
    expect(batches).toEqual([true]);
    await expect(gc.transact(write('capped-again'))).resolves.toBe('capped-again');
  });

  it('bounds a batch to maxBatch works', async () => {
    const { gc, batches } = committer(4);
    await Promise.all(Array.from({ length: 10 }, (_, i) => gc.transact(write(`bounded-${i}`))));
    expect(batches).toEqual([
      { committed: 4, ok: true },
      { committed: 4, ok: true },
      { committed: 2, ok: true },
    ]);
  });

  it('answers every parallel write once durable, each with exactly one audit row (property)', async () => {
    const transact = transactor(database);
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), async (fails) => {
        round++;
        const names = fails.map((_, i) => `prop-${round}-${i}`);
        const results = await Promise.allSettled(
          names.map((name, i) =>
            transact(async (s) => {
              await write(name)(s);
              if (fails[i]) throw new Error(`refused ${name}`);
              return name;
            }),
          ),
        );
        const s = bindStores(database.db, database.dialect);
        for (const [i, name] of names.entries()) {
          expect(results[i]!.status).toBe(fails[i] ? 'rejected' : 'fulfilled');
          expect((await s.tokens.get(name)) !== undefined).toBe(!fails[i]);
          expect(await auditRowsFor(database, name)).toBe(fails[i] ? 0 : 1);
        }
      }),
      { numRuns: 15 },
    );
  });

  it('keeps 200 concurrent writes after the store is closed and reopened', async () => {
    const transact = transactor(database);
    const names = Array.from({ length: 200 }, (_, i) => `durable-${i}`);
    expect(await Promise.all(names.map((n) => transact(write(n))))).toEqual(names);
    await database.close();
    database = await openDatabase({ databaseUrl: url, dataDir });
    const s = bindStores(database.db, database.dialect);
    for (const n of names) {
      expect(await s.tokens.get(n), n).toBeDefined();
      expect(await auditRowsFor(database, n), n).toBe(1);
    }
  });

  it.runIf(target.name === 'sqlite')('holds reads outside the batch until its COMMIT has returned', async () => {
    const transact = transactor(database);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const committed = transact(async (s) => {
      await write('pending-visibility')(s);
      entered();
      await gate;
      return 'committed';
    });
    await inside;
    let settled = false;
    const read = bindStores(database.db, database.dialect)
      .tokens.get('pending-visibility')
      .finally(() => (settled = true));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    // On the single connection the read would see the uncommitted row: it must not run yet.
    expect(settled).toBe(false);
    open();
    await expect(committed).resolves.toBe('committed');
    expect(await read).toBeDefined();
  });
});
