import { beforeAll, describe, expect, it } from 'vitest';
import type { JoinTokenRecord } from '../../src/pki/join-token-store.js';
import { SqlAgentStore, SqlJoinTokenStore } from '../../src/store/attestation-store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { transactor } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suites for the JoinTokenStore and AgentStore ports on every store in TEST_DATABASES.
 * The property the join-token design rests on: `consume` succeeds once, also for concurrent
 * transactions.
 */
describe.each(TEST_DATABASES)('attestation stores on $name', (target) => {
  const database = freshDatabase(target);
  const tokens = () => new SqlJoinTokenStore(database().db);
  const agents = () => new SqlAgentStore(database().db);

  beforeAll(async () => {
    await new SqlTenantStore(database().db).create({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt: '2026-01-01T00:00:00.000Z' });
  });

  const token = (id: string): JoinTokenRecord => ({
    id,
    tenant: 'acme',
    secretHash: 'ab'.repeat(32),
    spiffeId: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    createdBy: 'Rampart::Token::acc',
    expiresAt: '2026-01-01T01:00:00.000Z',
    usedAt: null,
    usedBy: null,
  });

  it('round-trips a join token and consumes it once', async () => {
    await tokens().insert(token('jt_1'));
    expect(await tokens().get('jt_1')).toEqual(token('jt_1'));
    expect(await tokens().get('jt_none')).toBeUndefined();
    expect(await tokens().consume('jt_1', '2026-01-01T00:10:00.000Z', 'spiffe://acme.rampart.local/a')).toBe(true);
    expect(await tokens().consume('jt_1', '2026-01-01T00:11:00.000Z', 'spiffe://acme.rampart.local/b')).toBe(false);
    expect(await tokens().get('jt_1')).toMatchObject({ usedAt: '2026-01-01T00:10:00.000Z', usedBy: 'spiffe://acme.rampart.local/a' });
    expect(await tokens().consume('jt_none', '2026-01-01T00:10:00.000Z', 'x')).toBe(false);
  });

  it('lets exactly one of many concurrent transactions consume a token', async () => {
    await tokens().insert(token('jt_race'));
    const transact = transactor(database());
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => transact((s) => s.joinTokens.consume('jt_race', '2026-01-01T00:10:00.000Z', `spiffe://acme.rampart.local/${i}`))),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('records an attested agent and replaces its selectors when it attests again', async () => {
    const first = { tenant: 'acme', spiffeId: 'spiffe://acme.rampart.local/agent/n1', method: 'k8s_psat' as const, selectors: ['k8s:cluster:prod', 'k8s:ns:a'], attestedAt: '2026-01-01T00:00:00.000Z' };
    await agents().upsert(first);
    expect(await agents().get('acme', first.spiffeId)).toEqual(first);
    const again = { ...first, selectors: ['k8s:cluster:prod'], attestedAt: '2026-01-01T01:00:00.000Z' };
    await agents().upsert(again);
    expect(await agents().get('acme', first.spiffeId)).toEqual(again);
    expect(await agents().get('acme', 'spiffe://acme.rampart.local/agent/none')).toBeUndefined();
  });
});
