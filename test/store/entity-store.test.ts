import { beforeAll, describe, expect, it } from 'vitest';
import type { CedarEntityJson } from '../../src/authz/store.js';
import { SqlEntityStore } from '../../src/store/entity-store.js';
import { SqlTenantStore } from '../../src/store/tenant-store.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/** Contract suite for the EntityStore port (src/authz/store.ts) on every store in TEST_DATABASES. */

const alice: CedarEntityJson = { uid: { type: 'User', id: 'alice' }, attrs: { dept: 'eng', level: 3, tags: ['a', 'ü'] }, parents: [{ type: 'Group', id: 'eng' }] };
const eng: CedarEntityJson = { uid: { type: 'Group', id: 'eng' }, attrs: {}, parents: [] };

describe.each(TEST_DATABASES)('EntityStore on $name', (target) => {
  const database = freshDatabase(target);
  const entities = () => new SqlEntityStore(database().db);

  beforeAll(async () => {
    const tenants = new SqlTenantStore(database().db);
    for (const name of ['acme', 'globex']) await tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: '2026-01-01T00:00:00.000Z' });
  });

  it('has revision 0 and no entities before the first write', async () => {
    expect(await entities().entities('acme', 'docs')).toEqual({ revision: 0, entities: [] });
  });

  it('replaces the whole set and counts revisions', async () => {
    expect(await entities().replace('acme', 'docs', [alice, eng], '2026-01-01T00:00:01.000Z')).toBe(1);
    expect(await entities().entities('acme', 'docs')).toEqual({ revision: 1, entities: [alice, eng] });
    expect(await entities().replace('acme', 'docs', [eng], '2026-01-01T00:00:02.000Z')).toBe(2);
    expect(await entities().entities('acme', 'docs')).toEqual({ revision: 2, entities: [eng] });
    expect(await entities().replace('acme', 'docs', [], '2026-01-01T00:00:03.000Z')).toBe(3);
    expect(await entities().entities('acme', 'docs')).toEqual({ revision: 3, entities: [] });
  });

  it('keeps tenants and stores apart', async () => {
    expect(await entities().entities('globex', 'docs')).toEqual({ revision: 0, entities: [] });
    expect(await entities().entities('acme', 'other')).toEqual({ revision: 0, entities: [] });
    expect(await entities().replace('globex', 'docs', [alice], '2026-01-01T00:00:04.000Z')).toBe(1);
    expect((await entities().entities('acme', 'docs')).revision).toBe(3);
  });

  it('refuses entities for a tenant that does not exist', async () => {
    await expect(entities().replace('nobody', 'docs', [alice], '2026-01-01T00:00:05.000Z')).rejects.toThrow();
  });

  it('gives concurrent replacements distinct revisions', async () => {
    const db = database().db;
    const revisions = await Promise.all(
      Array.from({ length: 5 }, (_, i) => db.transaction().execute((trx) => new SqlEntityStore(trx).replace('acme', 'docs', [eng], `2026-01-01T00:01:0${i}.000Z`))),
    );
    expect(new Set(revisions).size).toBe(5);
    expect((await entities().entities('acme', 'docs')).revision).toBe(Math.max(...revisions));
  });
});
