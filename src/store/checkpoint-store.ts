import { type Kysely, sql } from 'kysely';
import type { CheckpointStore, StoredCheckpoint, StoredLogKey } from '../audit/store.js';
import type { Dialect } from './database.js';
import type { Database } from './schema.js';

const KEY_ROW = 1;

type CheckpointRow = Database['audit_checkpoints'];

function toCheckpoint(r: CheckpointRow): StoredCheckpoint {
  return { size: Number(r.size), rootHash: r.root_hash, note: r.note, frontier: r.frontier, createdAt: r.created_at };
}

export class SqlCheckpointStore implements CheckpointStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async loadKey(): Promise<StoredLogKey | undefined> {
    const row = await this.db.selectFrom('audit_log_key').selectAll().where('id', '=', KEY_ROW).executeTakeFirst();
    return row && { origin: row.origin, verifierKey: row.verifier_key, sealedPrivateKey: row.private_key, createdAt: row.created_at };
  }

  async createKey(key: StoredLogKey): Promise<StoredLogKey> {
    await this.db
      .insertInto('audit_log_key')
      .values({ id: KEY_ROW, origin: key.origin, verifier_key: key.verifierKey, private_key: key.sealedPrivateKey, created_at: key.createdAt })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    const stored = await this.loadKey();
    if (!stored) throw new Error('the audit log key vanished right after it was written');
    return stored;
  }

  async latest(): Promise<StoredCheckpoint | undefined> {
    const row = await this.db.selectFrom('audit_checkpoints').selectAll().orderBy('size', 'desc').limit(1).executeTakeFirst();
    return row && toCheckpoint(row);
  }

  async get(size: number): Promise<StoredCheckpoint | undefined> {
    const row = await this.db.selectFrom('audit_checkpoints').selectAll().where('size', '=', size).executeTakeFirst();
    return row && toCheckpoint(row);
  }

  async list(afterSize: number, limit: number): Promise<StoredCheckpoint[]> {
    const rows = await this.db.selectFrom('audit_checkpoints').selectAll().where('size', '>', afterSize).orderBy('size').limit(limit).execute();
    return rows.map(toCheckpoint);
  }

  async insert(cp: StoredCheckpoint): Promise<void> {
    await this.db
      .insertInto('audit_checkpoints')
      .values({ size: cp.size, root_hash: cp.rootHash, note: cp.note, frontier: cp.frontier, created_at: cp.createdAt })
      .onConflict((oc) => oc.column('size').doNothing())
      .execute();
  }

  /**
   * On PostgreSQL a session-level advisory lock held on one pooled connection serializes the
   * replicas' signers; SQLite has one process per file, where the caller's own queue suffices.
   */
  async withSignerLock<T>(work: () => Promise<T>): Promise<T> {
    if (this.dialect !== 'postgres') return work();
    return this.db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(hashtext('rampart.audit.checkpoint'))`.execute(conn);
      try {
        return await work();
      } finally {
        await sql`select pg_advisory_unlock(hashtext('rampart.audit.checkpoint'))`.execute(conn);
      }
    });
  }
}
