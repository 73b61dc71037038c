import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createToken, renewToken, revokeTokenTree } from '../../src/identity/tokens.js';
import { bindStores } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

const H = 3_600_000;

/** Vault token semantics of src/identity/tokens.ts: renewal limits and revocation trees. */
describe.each(TEST_DATABASES)('Vault tokens on $name', (target) => {
  const database = freshDatabase(target);
  const clock = new ManualClock();
  const tokens = () => bindStores(database().db, database().dialect).tokens;
  const make = (extra: Partial<Parameters<typeof createToken>[2]> = {}) =>
    createToken(tokens(), clock, { tenant: 'acme', policies: ['p'], displayName: '', ttlMs: H, createdBy: null, renewable: true, ...extra });

  beforeAll(async () => {
    await bindStores(database().db, database().dialect).tenants.create({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt: clock.now().toISOString() });
  });

  it('renews by the creation TTL or the increment, never past the explicit max TTL', async () => {
    const { record } = await make({ explicitMaxTtlMs: 2 * H });
    clock.advance(H / 2);
    let r = await renewToken(tokens(), clock, record, undefined);
    expect(Date.parse(r.expiresAt!) - clock.now().getTime()).toBe(H);
    clock.advance(H);
    r = await renewToken(tokens(), clock, r, 4 * H);
    expect(r.expiresAt).toBe(record.explicitMaxExpiresAt);
    clock.advance(H);
    await expect(renewToken(tokens(), clock, r, H)).rejects.toMatchObject({ code: 'secrets.token_not_renewable' });
  });

  it('renews a periodic token by its period, whatever the increment', async () => {
    const { record } = await make({ periodMs: H / 4, ttlMs: undefined });
    expect(Date.parse(record.expiresAt!) - clock.now().getTime()).toBe(H / 4);
    clock.advance(H / 8);
    const r = await renewToken(tokens(), clock, record, 10 * H);
    expect(Date.parse(r.expiresAt!) - clock.now().getTime()).toBe(H / 4);
  });

  it('refuses to renew tokens made without renewal (POST /v1/tokens) or without expiry', async () => {
    const plain = await createToken(tokens(), clock, { tenant: 'acme', policies: [], displayName: '', ttlMs: H, createdBy: null });
    await expect(renewToken(tokens(), clock, plain.record, H)).rejects.toMatchObject({ code: 'secrets.token_not_renewable' });
    const forever = await createToken(tokens(), clock, { tenant: 'acme', policies: [], displayName: '', ttlMs: undefined, createdBy: null, renewable: true });
    await expect(renewToken(tokens(), clock, forever.record, H)).rejects.toMatchObject({ code: 'secrets.token_not_renewable' });
  });

  it('revokes a whole tree and nothing else', async () => {
    const root = await make();
    const child = await make({ parent: root.record.accessor });
    const grandchild = await make({ parent: child.record.accessor });
    const sibling = await make();
    const revoked = await revokeTokenTree(tokens(), clock, 'acme', root.record.accessor);
    expect(revoked.sort()).toEqual([root, child, grandchild].map((t) => t.record.accessor).sort());
    expect((await tokens().get(grandchild.record.accessor))?.revokedAt).not.toBeNull();
    expect((await tokens().get(sibling.record.accessor))?.revokedAt).toBeNull();
    await expect(revokeTokenTree(tokens(), clock, 'globex', sibling.record.accessor)).rejects.toMatchObject({ code: 'token.not_found' });
  });
});
