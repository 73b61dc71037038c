import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { DatabaseError } from '../../../src/core/errors.js';
import { configRecordId } from '../../../src/secrets/database/config.js';
import {
  type DatabaseTransact,
  type EngineDeps,
  applyRootRotation,
  beginRootRotation,
  finishRootRotation,
  prepareConfig,
  rotateRoot,
  storeConfig,
  writeConfig,
} from '../../../src/secrets/database/connections.js';
import { PENDING_ROTATION_MS, hasPending, openCurrent, openPending } from '../../../src/secrets/database/password-slot.js';
import type { DatabasePlugin, PendingChange } from '../../../src/secrets/database/plugin.js';
import { PostgresqlPlugin } from '../../../src/secrets/database/postgresql-plugin.js';
import { applyStaticRotation, beginStaticRotation, draftStaticRole, staticCredentials, writeStaticRole } from '../../../src/secrets/database/static-credentials.js';
import { StaticRotation } from '../../../src/secrets/database/static-rotation.js';
import { quoteIdent } from '../../../src/secrets/database/statements.js';
import { SqlDatabaseStore } from '../../../src/store/database-store.js';
import { SqlExpiryLock } from '../../../src/store/lease-store.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';
import { memoryBarrier } from '../leases-fixtures.js';
import { type TargetDatabase, createTargetDatabase } from './target-postgres.js';

/**
 * The database engine's administrative writes with their calls to the target outside the store
 * transaction (issue 6; src/secrets/database/password-slot.ts): a rotation seals the new password
 * as pending, then runs `ALTER ROLE`, then records it as current. Faults are injected in the
 * plugin around the `ALTER ROLE`, and "the process dies" is a rotation whose later steps never
 * run. Whatever the window, the password in force on the target is one the store holds, and the
 * next use (a root rotation's settlement, a scheduled static rotation) makes the store current
 * again. The target accepts any password (`trust`), so the checks read its SCRAM verifiers.
 */

const MOUNT = 'database_0003';

/** The real plugin, with `execute` failing before the target sees it (`down`) or after it committed (`lost`: the reply is lost). */
class FaultyPlugin implements DatabasePlugin {
  fault: 'none' | 'down' | 'lost' = 'none';
  executed = 0;
  constructor(private readonly inner: DatabasePlugin) {}
  verify(url: string) {
    return this.inner.verify(url);
  }
  begin(url: string, statements: readonly string[], secrets: readonly string[]): Promise<PendingChange> {
    return this.inner.begin(url, statements, secrets);
  }
  async execute(url: string, statements: readonly string[], secrets: readonly string[]): Promise<void> {
    if (this.fault === 'down') throw new DatabaseError('database.unavailable', 'injected: the database is down');
    await this.inner.execute(url, statements, secrets);
    this.executed++;
    if (this.fault === 'lost') throw new DatabaseError('database.unavailable', 'injected: the reply was lost after the commit');
  }
  dropUser(url: string, username: string) {
    return this.inner.dropUser(url, username);
  }
  dropUsers(url: string, usernames: readonly string[]) {
    return this.inner.dropUsers(url, usernames);
  }
  userExists(url: string, username: string) {
    return this.inner.userExists(url, username);
  }
  forget(url: string) {
    return this.inner.forget(url);
  }
  close() {
    return this.inner.close();
  }
}

describe.each(TEST_DATABASES)('database engine administrative writes in steps (store on $name)', (storeTarget) => {
  const database = freshDatabase(storeTarget);
  let target: TargetDatabase;
  const inner = new PostgresqlPlugin();
  const plugin = new FaultyPlugin(inner);
  const clock = new ManualClock(Date.now());
  let deps: EngineDeps;
  const tenant = 'acme';
  const store = () => new SqlDatabaseStore(database().db);
  const transact: DatabaseTransact = (work) => database().db.transaction().execute((trx) => work({ database: new SqlDatabaseStore(trx) }));
  /** The root password the store holds as current, and whether a rotation is pending. */
  const storedRoot = async () => {
    const config = (await store().getConfig(tenant, MOUNT, 'pg'))!;
    return { password: openCurrent(deps.sealer, tenant, configRecordId(MOUNT, 'pg'), config), pending: hasPending(config) };
  };
  const rootInForce = async () => {
    const { password } = await storedRoot();
    return target.passwordMatches(target.rootUser, password);
  };

  beforeAll(async () => {
    target = await createTargetDatabase();
    deps = { plugin, sealer: await memoryBarrier(clock), clock };
    await writeConfig(store(), deps, tenant, MOUNT, 'pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: target.templateUrl,
      username: target.rootUser,
      password: target.rootPassword,
      allowed_roles: '*',
    });
  });
  afterAll(async () => {
    plugin.fault = 'none';
    await plugin.close();
    await target?.drop();
  });

  it('rotate-root: the new password is pending in the store before the target has it, current after', async () => {
    const before = await storedRoot();
    const rotation = await transact(({ database: s }) => beginRootRotation(s, deps, tenant, MOUNT, 'pg'));
    expect(await storedRoot()).toEqual({ password: before.password, pending: true });
    expect(await rootInForce()).toBe(true);
    // A second rotation while this one runs is refused: it could leave the target with a password nobody kept.
    await expect(transact(({ database: s }) => beginRootRotation(s, deps, tenant, MOUNT, 'pg'))).rejects.toMatchObject({ code: 'database.config_invalid' });
    await applyRootRotation(store(), transact, deps, rotation);
    expect(await target.passwordMatches(target.rootUser, rotation.password)).toBe(true);
    await transact(({ database: s }) => finishRootRotation(s, deps, rotation));
    expect(await storedRoot()).toEqual({ password: rotation.password, pending: false });
  });

  it('rotate-root: the process dies after ALTER ROLE, before the commit; the next use finishes it', async () => {
    const rotation = await transact(({ database: s }) => beginRootRotation(s, deps, tenant, MOUNT, 'pg'));
    await applyRootRotation(store(), transact, deps, rotation);
    // ... and nothing more: the store's current password is no longer the one in force.
    expect(await rootInForce()).toBe(false);
    expect((await storedRoot()).pending).toBe(true);
    // After the restart, a configuration write that keeps the password settles the rotation first.
    const prepared = await prepareConfig(store(), transact, deps, tenant, MOUNT, 'pg', { allowed_roles: 'app,*' });
    await transact(({ database: s }) => storeConfig(s, prepared));
    expect(await storedRoot()).toEqual({ password: rotation.password, pending: false });
    expect(await rootInForce()).toBe(true);
  });

  it('rotate-root: the process dies before ALTER ROLE; the next rotation sets the pending password, then its own', async () => {
    await transact(({ database: s }) => beginRootRotation(s, deps, tenant, MOUNT, 'pg'));
    expect(await rootInForce()).toBe(true);
    await rotateRoot(store(), deps, tenant, MOUNT, 'pg');
    expect(await storedRoot()).toMatchObject({ pending: false });
    expect(await rootInForce()).toBe(true);
  });

  it('rotate-root: a reply lost after the commit is finished at once; a target that is down keeps both passwords until it is back', async () => {
    plugin.fault = 'lost';
    const executed = plugin.executed;
    await expect(rotateRoot(store(), deps, tenant, MOUNT, 'pg')).rejects.toThrow(/reply was lost/);
    // The settlement ran the statements again (lost again, but committed): the pending password is what the target has.
    expect(plugin.executed).toBeGreaterThan(executed);
    plugin.fault = 'none';
    const settled = await prepareConfig(store(), transact, deps, tenant, MOUNT, 'pg', {});
    await transact(({ database: s }) => storeConfig(s, settled));
    expect(await storedRoot()).toMatchObject({ pending: false });
    expect(await rootInForce()).toBe(true);

    plugin.fault = 'down';
    const inForce = (await storedRoot()).password;
    await expect(rotateRoot(store(), deps, tenant, MOUNT, 'pg')).rejects.toMatchObject({ code: 'database.unavailable' });
    expect(await storedRoot()).toEqual({ password: inForce, pending: true });
    // Unreachable, the rotation cannot be settled: a write that would keep the root password is refused, nothing lost.
    await expect(prepareConfig(store(), transact, deps, tenant, MOUNT, 'pg', {})).rejects.toMatchObject({ code: 'database.unavailable' });
    plugin.fault = 'none';
    await rotateRoot(store(), deps, tenant, MOUNT, 'pg');
    expect(await storedRoot()).toMatchObject({ pending: false });
    expect(await rootInForce()).toBe(true);
  });

  it('rotate-root: the pending password has a column of its own, sealed to its own record id; neither ciphertext passes for the other', async () => {
    const columns = () =>
      database()
        .db.selectFrom('secrets_database_configs')
        .select(['sealed_password', 'pending_sealed_password'])
        .where('tenant', '=', tenant)
        .where('mount', '=', MOUNT)
        .where('name', '=', 'pg')
        .executeTakeFirstOrThrow();
    const rotation = await transact(({ database: s }) => beginRootRotation(s, deps, tenant, MOUNT, 'pg'));
    const during = await columns();
    expect(during.sealed_password).toMatch(/^rb1:\S+$/);
    expect(during.pending_sealed_password).toMatch(/^rb1:\S+$/);
    const recordId = configRecordId(MOUNT, 'pg');
    const config = (await store().getConfig(tenant, MOUNT, 'pg'))!;
    expect(openPending(deps.sealer, tenant, recordId, config)).toBe(rotation.password);
    // A pending ciphertext moved into the current column, or the reverse, does not open.
    expect(() => openCurrent(deps.sealer, tenant, recordId, { sealedPassword: during.pending_sealed_password! })).toThrow();
    expect(() => openPending(deps.sealer, tenant, recordId, { sealedPassword: '', pendingSealedPassword: during.sealed_password })).toThrow();
    await applyRootRotation(store(), transact, deps, rotation);
    await transact(({ database: s }) => finishRootRotation(s, deps, rotation));
    const after = await columns();
    expect(after.pending_sealed_password).toBeNull();
    expect(openCurrent(deps.sealer, tenant, recordId, { sealedPassword: after.sealed_password })).toBe(rotation.password);
  });

  it('startup: the rotation worker\'s first pass finishes a root rotation a previous process left pending, once', async () => {
    const rotation = await transact(({ database: s }) => beginRootRotation(s, deps, tenant, MOUNT, 'pg'));
    await applyRootRotation(store(), transact, deps, rotation);
    // ... and the process dies. The next one starts while the target is down:
    expect(await rootInForce()).toBe(false);
    const worker = () => new StaticRotation({ store: store(), transact, deps, clock, lock: new SqlExpiryLock(database().db, database().dialect, 'rampart.test.phases') });
    const errors: unknown[] = [];
    const first = worker();
    first.start(3_600_000, (err) => errors.push(err));
    plugin.fault = 'down';
    try {
      await first.tick();
      expect(errors).toEqual([expect.objectContaining({ code: 'database.unavailable' })]);
      expect((await storedRoot()).pending).toBe(true);
      // Swept once: later passes leave it to the connection's next use.
      await first.tick();
      expect(errors).toHaveLength(1);
    } finally {
      plugin.fault = 'none';
      await first.stop();
    }
    // The process after that finds the target up.
    const second = worker();
    expect(await second.settleRootRotations()).toBe(1);
    expect(await storedRoot()).toEqual({ password: rotation.password, pending: false });
    expect(await rootInForce()).toBe(true);
    expect(await second.settleRootRotations()).toBe(0);
  });

  it('config write: refuses to store a record prepared before a concurrent root rotation', async () => {
    const prepared = await prepareConfig(store(), transact, deps, tenant, MOUNT, 'pg', { allowed_roles: '*' });
    await rotateRoot(store(), deps, tenant, MOUNT, 'pg');
    await expect(transact(({ database: s }) => storeConfig(s, prepared))).rejects.toMatchObject({ code: 'database.config_invalid' });
    expect(await rootInForce()).toBe(true);
  });

  /** A database user for a static role, with a known starting password. */
  async function staticUser(): Promise<string> {
    const user = `app_phases_${Math.random().toString(36).slice(2, 10)}`;
    await target.query(`create role ${quoteIdent(user)} login password 'initial'`);
    target.track(user);
    return user;
  }
  const staticInForce = async (name: string, user: string) => {
    const role = (await store().getStaticRole(tenant, MOUNT, name))!;
    return target.passwordMatches(user, staticCredentials(role, deps).password as string);
  };

  it('static role: the process dies after ALTER ROLE; the scheduled rotation sets a password anew once the pending one is due', async () => {
    const user = await staticUser();
    await writeStaticRole(store(), deps, tenant, MOUNT, 'static-crash', { db_name: 'pg', username: user, rotation_period: '1h' });
    expect(await staticInForce('static-crash', user)).toBe(true);
    const role = (await store().getStaticRole(tenant, MOUNT, 'static-crash'))!;
    const step = await transact(({ database: s }) => beginStaticRotation(s, deps, role));
    // Another rotation (rotate-role) while this one is in flight is refused.
    await expect(transact(({ database: s }) => beginStaticRotation(s, deps, role))).rejects.toMatchObject({ code: 'database.role_invalid' });
    await applyStaticRotation(transact, deps, step);
    expect(await staticInForce('static-crash', user)).toBe(false);

    const rotation = new StaticRotation({ store: store(), transact, deps, clock, lock: new SqlExpiryLock(database().db, database().dialect, 'rampart.test.phases') });
    expect(await rotation.tick()).toEqual({ rotated: 0, failed: 0 });
    clock.advance(PENDING_ROTATION_MS);
    expect(await rotation.tick()).toEqual({ rotated: 1, failed: 0 });
    expect(await staticInForce('static-crash', user)).toBe(true);
    const done = (await store().getStaticRole(tenant, MOUNT, 'static-crash'))!;
    expect(done.pendingSealedPassword).toBeUndefined();
    expect(done.nextRotationAt).toBe(new Date(clock.now().getTime() + 3600_000).toISOString());
  });

  it('static role: a scheduled rotation whose reply is lost is counted as failed, keeps the pending password, and the retry puts the store right', async () => {
    const user = await staticUser();
    await writeStaticRole(store(), deps, tenant, MOUNT, 'static-lost', { db_name: 'pg', username: user, rotation_period: 5 });
    const rotation = new StaticRotation({ store: store(), transact, deps, clock, lock: new SqlExpiryLock(database().db, database().dialect, 'rampart.test.phases') });
    clock.advance(5_000);
    plugin.fault = 'lost';
    expect(await rotation.tick()).toMatchObject({ failed: 1 });
    plugin.fault = 'none';
    const failed = (await store().getStaticRole(tenant, MOUNT, 'static-lost'))!;
    expect(failed.rotationAttempts).toBe(1);
    expect(failed.pendingSealedPassword).toBeDefined();
    expect(await staticInForce('static-lost', user)).toBe(false);
    clock.set(new Date(Date.parse(failed.nextRotationAt)));
    expect(await rotation.tick()).toMatchObject({ rotated: 1, failed: 0 });
    expect(await staticInForce('static-lost', user)).toBe(true);
  });

  it('static role: a new role whose first ALTER ROLE fails leaves nothing stored', async () => {
    const user = await staticUser();
    const draft = await draftStaticRole(store(), deps, tenant, MOUNT, 'static-new', { db_name: 'pg', username: user, rotation_period: 60 });
    const step = await transact(({ database: s }) => beginStaticRotation(s, deps, draft, true));
    // While the first rotation runs, the role has no password to hand out.
    expect(() => staticCredentials(step.role, deps)).toThrow(expect.objectContaining({ code: 'database.unavailable' }));
    plugin.fault = 'down';
    await expect(applyStaticRotation(transact, deps, step)).rejects.toMatchObject({ code: 'database.unavailable' });
    plugin.fault = 'none';
    expect(await store().getStaticRole(tenant, MOUNT, 'static-new')).toBeUndefined();
    expect(await target.passwordMatches(user, 'initial')).toBe(true);
  });
});
