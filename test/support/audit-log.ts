import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import type { Sealer } from '../../src/core/sealer.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { AuditLog } from '../../src/audit/log.js';
import { leafHash, toHex } from '../../src/audit/merkle.js';
import { type NoteVerifier, parseVerifierKey } from '../../src/audit/note.js';
import { type LogSource, storeLogSource } from '../../src/audit/verify.js';
import { ManualClock } from '../../src/core/clock.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { SqlCheckpointStore } from '../../src/store/checkpoint-store.js';
import { type StoreDatabase, openDatabase } from '../../src/store/database.js';
import type { TestDatabase } from './databases.js';
import { testEvent } from './audit-event.js';

/**
 * A real audit log (AuditLog + Checkpointer over the SQL stores) in a fresh database, with the
 * tampering an attacker with write access to the store could do. Not a test file: shared by
 * test/audit/{verify,witness}.test.ts.
 */
export interface LogFixture {
  readonly database: StoreDatabase;
  readonly clock: ManualClock;
  readonly audit: AuditLog;
  readonly store: SqlAuditStore;
  readonly checkpoints: SqlCheckpointStore;
  readonly checkpointer: Checkpointer;
  readonly verifier: NoteVerifier;
  readonly source: LogSource;
  /** Appends `n` events, integrates them and signs a checkpoint. */
  grow(n: number): Promise<void>;
  setPayload(index: number, payload: string, options?: { rehash?: boolean }): Promise<void>;
  /** What an attacker with the signing key does: re-integrates the current payloads from scratch and signs afresh. */
  rewriteAndResign(): Promise<void>;
  close(): Promise<void>;
}

/** Stands in for the barrier; the real one is exercised through the runtime in test/server/tlog.test.ts. */
const plainSealer: Sealer = {
  encrypt: (_t, _id, plaintext) => Buffer.from(plaintext).toString('base64'),
  decrypt: (_t, _id, ciphertext) => Buffer.from(ciphertext, 'base64'),
};

let seq = 0;
function event(clock: ManualClock): AuditEvent {
  seq++;
  return testEvent(seq, {
    time: clock.now().toISOString(),
    tenant: seq % 2 === 0 ? 'default' : 'acme',
    source_ip: '127.0.0.1',
    action: 'token:lookup',
    http: { method: 'GET', route: '/v1/tokens/self', status: 200 },
  });
}

export async function openLogFixture(target: TestDatabase): Promise<LogFixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-tlog-'));
  const { url, drop } = await target.create();
  const database = await openDatabase({ databaseUrl: url, dataDir });
  const clock = new ManualClock();
  const store = new SqlAuditStore(database.db, database.dialect);
  const checkpoints = new SqlCheckpointStore(database.db, database.dialect);
  const audit = new AuditLog({ store, clock, integrateBatch: 7 });
  const checkpointer = await Checkpointer.open({ checkpoints, audit: store, sealer: plainSealer, clock, origin: 'rampart.local/audit/test' });
  const f: LogFixture = {
    database,
    clock,
    audit,
    store,
    checkpoints,
    checkpointer,
    verifier: parseVerifierKey(checkpointer.verifierKey),
    source: storeLogSource(store, checkpoints),
    async grow(n) {
      await Promise.all(Array.from({ length: n }, () => audit.append(event(clock))));
      await audit.integrateAll();
      clock.advance(1000);
      await checkpointer.checkpoint();
    },
    async setPayload(index, payload, options = {}) {
      await database.db
        .updateTable('audit_events')
        .set(options.rehash ? { payload, leaf_hash: toHex(leafHash(new TextEncoder().encode(payload))) } : { payload })
        .where('leaf_index', '=', index)
        .execute();
    },
    async rewriteAndResign() {
      await database.db.updateTable('audit_events').set({ leaf_index: null, leaf_hash: null }).execute();
      await database.db.deleteFrom('audit_tree').execute();
      await database.db.deleteFrom('audit_tree_heads').execute();
      await database.db.deleteFrom('audit_tree_nodes').execute();
      await database.db.deleteFrom('audit_checkpoints').execute();
      await audit.integrateAll();
      await checkpointer.checkpoint();
    },
    async close() {
      await audit.close();
      await checkpointer.close();
      await database.close();
      await drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return f;
}
