import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import pg from 'pg';
import { createThrowawayDatabase } from '../../support/throwaway-database.js';

/**
 * A throwaway target database on the local PostgreSQL for the database engine: its own database,
 * a connection user of its own (LOGIN CREATEROLE, as Vault's docs advise, not a superuser) that
 * owns a table `things`, and cleanup of every role the tests created.
 *
 * The local server trusts 127.0.0.1 (the CI script sets it up that way, and the machine's
 * pg_hba.conf is not ours to change), so logging in proves a role exists, not that a password is
 * right. Passwords are checked against the SCRAM-SHA-256 verifier in `pg_authid` instead
 * (RFC 5802 §3, RFC 7677): the StoredKey there is H(HMAC(PBKDF2(password, salt, i), "Client Key")).
 */
export const ADMIN_URL = process.env.RAMPART_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TargetDatabase {
  /** `postgres://{{username}}:{{password}}@127.0.0.1:5432/<db>` */
  readonly templateUrl: string;
  readonly dbName: string;
  readonly rootUser: string;
  readonly rootPassword: string;
  /** Runs a query as the cluster admin in the target database. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** True when `password` is the role's current password. */
  passwordMatches(role: string, password: string): Promise<boolean>;
  roleExists(role: string): Promise<boolean>;
  validUntil(role: string): Promise<Date | null>;
  /** Logs in as `role` and reads `things`; throws when the role cannot log in or read. */
  connectAs(role: string, password: string): Promise<number>;
  /** Roles to drop at cleanup: every user a test issued or made (roles are cluster-wide). */
  track(role: string): void;
  drop(): Promise<void>;
}

export async function createTargetDatabase(): Promise<TargetDatabase> {
  const { url, drop } = await createThrowawayDatabase(ADMIN_URL, 'rampart_target');
  const dbName = new URL(url).pathname.slice(1);
  const rootUser = `rampart_root_${randomBytes(4).toString('hex')}`;
  const rootPassword = randomBytes(12).toString('hex');
  const tracked = new Set<string>([rootUser]);
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  // Dropping the database (WITH FORCE) may end a connection the pool is still closing.
  admin.on('error', () => undefined);
  const query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => admin.query<R>(text, values);
  await query(`create role ${rootUser} with login createrole password '${rootPassword}'`);
  await query(`grant pg_signal_backend to ${rootUser}`);
  await query(`create table things (id int)`);
  await query(`insert into things values (1), (2)`);
  await query(`alter table things owner to ${rootUser}`);
  await query(`grant all on schema public to ${rootUser}`);
  const templateUrl = url.replace('postgres@', '{{username}}:{{password}}@');

  return {
    templateUrl,
    dbName,
    rootUser,
    rootPassword,
    query,
    async passwordMatches(role, password) {
      const r = await query<{ rolpassword: string | null }>('select rolpassword from pg_authid where rolname = $1', [role]);
      const verifier = r.rows[0]?.rolpassword;
      const m = verifier ? /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier) : null;
      if (!m) return false;
      const salted = pbkdf2Sync(password, Buffer.from(m[2]!, 'base64'), Number(m[1]), 32, 'sha256');
      const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
      return timingSafeEqual(storedKey, Buffer.from(m[3]!, 'base64'));
    },
    async roleExists(role) {
      return (await query('select 1 from pg_roles where rolname = $1', [role])).rowCount === 1;
    },
    async validUntil(role) {
      const r = await query<{ rolvaliduntil: Date | null }>('select rolvaliduntil from pg_roles where rolname = $1', [role]);
      return r.rows[0]?.rolvaliduntil ?? null;
    },
    async connectAs(role, password) {
      const u = new URL(url);
      u.username = encodeURIComponent(role);
      u.password = encodeURIComponent(password);
      const client = new pg.Client({ connectionString: u.toString() });
      await client.connect();
      try {
        return (await client.query('select count(*)::int as n from things')).rows[0].n as number;
      } finally {
        await client.end();
      }
    },
    track(role) {
      tracked.add(role);
    },
    async drop() {
      await admin.end();
      await drop();
      const cleanup = new pg.Client({ connectionString: ADMIN_URL });
      await cleanup.connect();
      try {
        for (const role of tracked) {
          await cleanup.query(`drop role if exists "${role.replaceAll('"', '""')}"`).catch(() => undefined);
        }
      } finally {
        await cleanup.end();
      }
    },
  };
}
