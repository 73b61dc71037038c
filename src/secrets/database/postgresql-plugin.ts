import pg from 'pg';
import { DatabaseError } from '../../core/errors.js';
import type { DatabasePlugin, PendingChange } from './plugin.js';
import { quoteIdent } from './statements.js';

/**
 * The PostgreSQL plugin over `pg`. This is the engine's external system (the database whose users
 * it manages, Vault's `postgresql-database-plugin`), not Rampart's store, so it talks `pg`
 * directly. Connections are pooled per rendered connection URL (which holds the credentials, so
 * a rotated root password gets a fresh pool and no pool is shared between different
 * credentials); idle pools close themselves.
 */
const MAX_POOLS = 32;
/** SQLSTATE classes of a database that cannot be used at all (PostgreSQL manual, Appendix A). */
const UNAVAILABLE_CLASSES = ['08', '28', '3D', '53', '57'];

export class PostgresqlPlugin implements DatabasePlugin {
  readonly #pools = new Map<string, pg.Pool>();

  async verify(url: string): Promise<void> {
    const client = await this.#connect(url, []);
    client.release();
  }

  async begin(url: string, statements: readonly string[], secrets: readonly string[]): Promise<PendingChange> {
    return withCatalogRetry(() => this.#begin(url, statements, secrets));
  }

  async #begin(url: string, statements: readonly string[], secrets: readonly string[]): Promise<PendingChange> {
    const client = await this.#connect(url, secrets);
    let open = true;
    const finish = async (sqlText: 'commit' | 'rollback') => {
      if (!open) return;
      open = false;
      try {
        await client.query(sqlText);
        client.release();
      } catch (err) {
        client.release(true);
        throw failure(err, secrets);
      }
    };
    try {
      await client.query('begin');
      for (const s of statements) await client.query(s);
    } catch (err) {
      open = false;
      await client.query('rollback').catch(() => undefined);
      client.release(true);
      throw failure(err, secrets);
    }
    return { commit: () => finish('commit'), rollback: () => finish('rollback') };
  }

  async execute(url: string, statements: readonly string[], secrets: readonly string[]): Promise<void> {
    const pending = await this.begin(url, statements, secrets);
    await pending.commit();
  }

  async userExists(url: string, username: string): Promise<boolean> {
    const client = await this.#connect(url, []);
    try {
      const r = await client.query('select 1 from pg_catalog.pg_roles where rolname = $1', [username]);
      return r.rowCount !== 0;
    } catch (err) {
      throw failure(err, []);
    } finally {
      client.release();
    }
  }

  async dropUser(url: string, username: string): Promise<void> {
    return this.dropUsers(url, [username]);
  }

  async dropUsers(url: string, usernames: readonly string[]): Promise<void> {
    if (usernames.length === 0) return;
    return withCatalogRetry(() => this.#dropUsers(url, usernames));
  }

  async #dropUsers(url: string, usernames: readonly string[]): Promise<void> {
    const client = await this.#connect(url, []);
    try {
      const exists = await client.query<{ rolname: string }>('select rolname from pg_catalog.pg_roles where rolname = any($1)', [usernames]);
      if (exists.rowCount === 0) return;
      const roles = exists.rows.map((r) => quoteIdent(r.rolname)).join(', ');
      // Ending their sessions needs pg_signal_backend; without it the drop below still succeeds
      // unless a user is connected, and that failure is retried.
      await client
        .query('select pg_terminate_backend(pid) from pg_catalog.pg_stat_activity where usename = any($1) and pid <> pg_backend_pid()', [exists.rows.map((r) => r.rolname)])
        .catch(() => undefined);
      await client.query('begin');
      // REASSIGN and DROP OWNED need membership in the roles; a CREATEROLE user may grant it itself.
      await optional(client, `grant ${roles} to current_user`);
      await optional(client, `reassign owned by ${roles} to current_user`);
      if (!(await optional(client, `drop owned by ${roles}`))) {
        // Without membership, revoke what they were granted schema by schema, as Vault's default
        // revocation does.
        const schemas = await client.query<{ nspname: string }>("select nspname from pg_catalog.pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema'");
        for (const { nspname } of schemas.rows) {
          const schema = quoteIdent(nspname);
          await optional(client, `revoke all privileges on all tables in schema ${schema} from ${roles}`);
          await optional(client, `revoke all privileges on all sequences in schema ${schema} from ${roles}`);
          await optional(client, `revoke all privileges on all functions in schema ${schema} from ${roles}`);
          await optional(client, `revoke usage on schema ${schema} from ${roles}`);
        }
      }
      await client.query(`drop role if exists ${roles}`);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw failure(err, []);
    } finally {
      client.release();
    }
  }

  async forget(url: string): Promise<void> {
    const pool = this.#pools.get(url);
    this.#pools.delete(url);
    await pool?.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }

  async #connect(url: string, secrets: readonly string[]): Promise<pg.PoolClient> {
    let pool = this.#pools.get(url);
    if (!pool) {
      if (this.#pools.size >= MAX_POOLS) await this.forget(this.#pools.keys().next().value!);
      pool = new pg.Pool({ connectionString: url, max: 4, idleTimeoutMillis: 10_000, connectionTimeoutMillis: 5_000, allowExitOnIdle: true });
      // A pooled connection the database drops must not crash the process.
      pool.on('error', () => undefined);
      this.#pools.set(url, pool);
    } else {
      this.#pools.delete(url);
      this.#pools.set(url, pool);
    }
    try {
      return await pool.connect();
    } catch (err) {
      throw new DatabaseError('database.unavailable', `could not connect to the database: ${redact(messageOf(err), [...secrets, ...urlSecrets(url)])}`, { cause: redactedCause(err) });
    }
  }
}

/**
 * PostgreSQL updates an object's ACL in place, so two sessions granting on or revoking from the
 * same table at once can fail with "tuple concurrently updated" (SQLSTATE XX000); deadlocks and
 * serialization failures are likewise transient. The whole transaction is rolled back in each
 * case, so it is retried a few times with a short random pause.
 */
async function withCatalogRetry<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      const transient = err instanceof DatabaseError && (/tuple concurrently (updated|deleted)/.test(err.message) || ['40P01', '40001'].includes(String(err.details?.sqlstate)));
      if (!transient || attempt >= 8) throw err;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5 * attempt)));
    }
  }
}

/** Runs a statement under a savepoint; false (and the transaction intact) when it failed. */
async function optional(client: pg.PoolClient, statement: string): Promise<boolean> {
  await client.query('savepoint rampart_optional');
  try {
    await client.query(statement);
    await client.query('release savepoint rampart_optional');
    return true;
  } catch {
    await client.query('rollback to savepoint rampart_optional');
    return false;
  }
}

function failure(err: unknown, secrets: readonly string[]): DatabaseError {
  if (err instanceof DatabaseError) return err;
  const code = (err as { code?: unknown }).code;
  const message = redact(messageOf(err), secrets);
  const unavailable = typeof code !== 'string' || code.length !== 5 || UNAVAILABLE_CLASSES.includes(code.slice(0, 2));
  return unavailable
    ? new DatabaseError('database.unavailable', `the database is unavailable: ${message}`, { cause: redactedCause(err) })
    : new DatabaseError('database.statement_failed', `the database refused a statement: ${message}`, { details: { sqlstate: code }, cause: redactedCause(err) });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The cause kept for logs: its message only, never the driver's error object (which may hold the query). */
function redactedCause(err: unknown): Error {
  return new Error((err as { code?: string }).code ?? 'error');
}

function redact(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const s of secrets) if (s.length >= 4) out = out.replaceAll(s, '<redacted>');
  return out;
}

function urlSecrets(url: string): string[] {
  try {
    const u = new URL(url);
    return u.password ? [u.password, decodeURIComponent(u.password)] : [];
  } catch {
    return [];
  }
}
