import { describe, expect, it } from 'vitest';
import { SqlAuditSaltStore } from '../../src/store/audit-salt-store.js';
import { openAuditHasher } from '../../src/audit/hasher.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';
import { databaseBefore } from '../support/migration-database.js';

const sealer = {
  encrypt: (_t: string, _r: string, p: Uint8Array) => Buffer.from(p).toString('base64'),
  decrypt: (_t: string, _r: string, c: string) => Buffer.from(c, 'base64'),
};

describe.each(TEST_DATABASES)('audit query columns on $name', (target) => {
  it('backfills the indexed columns of events written before migration 0005', async () => {
    const { db, latest, close } = await databaseBefore(target, '0005_audit_query');
    try {
      const payload = { time: '2026-01-01T00:00:00.000Z', principal: { id: 'acc' }, action: 'token:create', resource: { id: 'default/tokens' }, outcome: 'success' };
      await db.insertInto('audit_events').values({ tenant: 'default', recorded_at: 't', payload: JSON.stringify(payload) }).execute();
      await db.insertInto('audit_events').values({ tenant: 'default', recorded_at: 't', payload: JSON.stringify({ time: 'x', principal: null, action: null, resource: null, outcome: 'unauthenticated' }) }).execute();
      await latest();
      const rows = await db.selectFrom('audit_events').select(['event_time', 'principal_id', 'action', 'resource', 'outcome']).orderBy('id').execute();
      expect(rows).toEqual([
        { event_time: '2026-01-01T00:00:00.000Z', principal_id: 'acc', action: 'token:create', resource: 'default/tokens', outcome: 'success' },
        { event_time: 'x', principal_id: null, action: null, resource: null, outcome: 'unauthenticated' },
      ]);
    } finally {
      await close();
    }
  });
});

describe.each(TEST_DATABASES)('audit salt on $name', (target) => {
  const database = freshDatabase(target);

  it('is created once and reused, so hashes stay comparable across restarts', async () => {
    const store = new SqlAuditSaltStore(database().db);
    const first = await openAuditHasher(store, sealer, () => new Date());
    const again = await openAuditHasher(store, sealer, () => new Date());
    expect(again.hash('v')).toBe(first.hash('v'));
    expect(first.hash('v')).not.toBe(first.hash('w'));
  });
});
