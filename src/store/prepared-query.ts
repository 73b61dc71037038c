import type { CompiledQuery, Compilable, Kysely } from 'kysely';
import type { Database } from './schema.js';

/** Stands for a value given at execution; Kysely binds it like any value, so it lands in `parameters`. */
class Param {
  constructor(readonly name: string) {}
}

interface Compiled<P, R> {
  readonly query: CompiledQuery<R>;
  /** The placeholder bound at each position of `query.parameters`. */
  readonly order: readonly (keyof P & string)[];
}

/**
 * A hot query built and compiled by Kysely once per database, then run with new values.
 *
 * Building and compiling a small query costs Kysely more than the query costs the database
 * (several µs each for the token, mount and KV reads of a request). The SQL text of a query
 * depends only on its shape and the dialect, so it is compiled once, with a placeholder per
 * value, and each execution supplies the values in the order the compiler bound the
 * placeholders. On SQLite the unchanged text also hits the prepared-statement cache of
 * database.ts; on PostgreSQL the same text and parameters are sent as before.
 *
 * The compiled text is kept per dialect adapter (one per opened database, shared by its
 * transactions), because stores are constructed per transaction and the token store does not
 * know its dialect. `build` gets an object whose properties are the placeholders, typed as the
 * values they stand for; every placeholder must be used as a bound value (not in `sql.raw`), and
 * nothing else may be bound, which the first execution checks.
 *
 * @example
 *   const byAccessor = new PreparedQuery((db, p: { accessor: string }) =>
 *     db.selectFrom('tokens').selectAll().where('accessor', '=', p.accessor));
 *   const rows = await byAccessor.execute(trxOrDb, { accessor });
 */
export class PreparedQuery<P extends Record<string, unknown>, R> {
  readonly #build: (db: Kysely<Database>, params: P) => Compilable<R>;
  readonly #compiled = new WeakMap<object, Compiled<P, R>>();

  constructor(build: (db: Kysely<Database>, params: P) => Compilable<R>) {
    this.#build = build;
  }

  /** Runs the query on `db` (a store's database or the caller's transaction) with `values`. */
  async execute(db: Kysely<Database>, values: P): Promise<R[]> {
    const { query, order } = this.#compiledFor(db);
    const result = await db.executeQuery<R>({ ...query, parameters: order.map((name) => values[name]) });
    return result.rows;
  }

  #compiledFor(db: Kysely<Database>): Compiled<P, R> {
    // The adapter identifies the dialect, hence the compiled text; `getExecutor` is Kysely's own accessor for it.
    const adapter = db.getExecutor().adapter;
    let compiled = this.#compiled.get(adapter);
    if (!compiled) {
      const placeholders = new Proxy({} as P, { get: (_target, name) => new Param(String(name)) });
      const query = this.#build(db, placeholders).compile();
      const order = query.parameters.map((value) => {
        if (!(value instanceof Param)) throw new TypeError(`a prepared query binds a literal value: ${query.sql}`);
        return value.name as keyof P & string;
      });
      compiled = { query, order };
      this.#compiled.set(adapter, compiled);
    }
    return compiled;
  }
}
