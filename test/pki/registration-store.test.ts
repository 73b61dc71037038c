import { beforeAll, describe, expect, it } from 'vitest';
import type { RegistrationEntry } from '../../src/pki/registration-store.js';
import { SqlRegistrationStore } from '../../src/store/registration-store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/** Contract suite for the RegistrationStore port (src/pki/registration-store.ts) on every store in TEST_DATABASES. */
describe.each(TEST_DATABASES)('RegistrationStore on $name', (target) => {
  const database = freshDatabase(target);
  const store = () => new SqlRegistrationStore(database().db);

  beforeAll(async () => {
    const tenants = new SqlTenantStore(database().db);
    for (const name of ['acme', 'globex']) await tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: '2026-01-01T00:00:00.000Z' });
  });

  const entry = (id: string, over: Partial<RegistrationEntry> = {}): RegistrationEntry => ({
    id,
    tenant: 'acme',
    spiffeId: `spiffe://acme.rampart.local/ns/${id}`,
    parent: 'spiffe://acme.rampart.local/agent/a',
    selectors: ['k8s:sa:pay/api', 'unix:uid:1000'],
    dnsNames: ['api.pay.svc'],
    ttlMs: 600_000,
    createdAt: '2026-01-01T00:00:00.000Z',
    createdBy: 'Rampart::Token::acc',
    ...over,
  });

  it('round-trips every field, including a TTL beyond 32 bits and none at all', async () => {
    const big = entry('reg_1', { ttlMs: 30 * 86_400_000 });
    const none = entry('reg_2', { ttlMs: null, dnsNames: [], parent: 'k8s:cluster:prod' });
    expect(await store().insert(big)).toBe(true);
    expect(await store().insert(none)).toBe(true);
    // Same SPIFFE ID, parent and selectors: refused, whatever else differs.
    expect(await store().insert({ ...big, id: 'reg_dup', ttlMs: 1000 })).toBe(false);
    expect(await store().get('acme', 'reg_dup')).toBeUndefined();
    expect(await store().get('acme', 'reg_1')).toEqual(big);
    expect(await store().get('acme', 'reg_2')).toEqual(none);
  });

  it('never returns or deletes another tenant’s entry', async () => {
    await store().insert(entry('reg_g', { tenant: 'globex', spiffeId: 'spiffe://globex.rampart.local/x' }));
    expect(await store().get('acme', 'reg_g')).toBeUndefined();
    expect(await store().delete('acme', 'reg_g')).toBe(false);
    expect((await store().list('acme', 100, undefined)).map((e) => e.id)).not.toContain('reg_g');
    expect(await store().get('globex', 'reg_g')).toBeDefined();
  });

  it('pages by id and finds entries by parent', async () => {
    for (const id of ['reg_3', 'reg_4', 'reg_5']) await store().insert(entry(id, { parent: id === 'reg_5' ? 'k8s:cluster:prod' : 'spiffe://acme.rampart.local/agent/b' }));
    const first = await store().list('acme', 2, undefined);
    const rest = await store().list('acme', 100, first[first.length - 1]!.id);
    expect([...first, ...rest].map((e) => e.id)).toEqual(['reg_1', 'reg_2', 'reg_3', 'reg_4', 'reg_5']);
    expect((await store().byParents('acme', ['spiffe://acme.rampart.local/agent/b', 'k8s:cluster:prod'])).map((e) => e.id)).toEqual(['reg_2', 'reg_3', 'reg_4', 'reg_5']);
    expect(await store().byParents('acme', [])).toEqual([]);
    expect(await store().byParents('globex', ['k8s:cluster:prod'])).toEqual([]);
  });

  it('deletes once', async () => {
    expect(await store().delete('acme', 'reg_4')).toBe(true);
    expect(await store().delete('acme', 'reg_4')).toBe(false);
    expect(await store().get('acme', 'reg_4')).toBeUndefined();
  });
});
