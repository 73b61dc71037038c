import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { SecretsSeal } from '../../src/secrets/seal.js';
import { type KvContext, readSecret, writeSecret } from '../../src/secrets/kv/secrets.js';
import type { KvKey } from '../../src/secrets/kv/store.js';
import { applyRotationChange } from '../../src/secrets/rotation/policy.js';
import { RotationScheduler } from '../../src/secrets/rotation/scheduler.js';
import { bindStores, transactor } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

type Step = { readonly op: 'write' } | { readonly op: 'advance'; readonly ms: number } | { readonly op: 'tick' };

const PERIOD = 3600;

/**
 * The grace invariants under any interleaving of application writes, clock moves and scheduler
 * passes, for any grace period, `max_versions` and with or without a generator:
 * - the current version is always readable;
 * - a version whose grace has not ended is readable (max_versions never destroyed it);
 * - a version whose grace ended is not readable, even before the scheduler ran;
 * - every kept version is within max_versions of the current one, or in (or just out of) grace.
 */
describe.each(TEST_DATABASES)('KV grace periods on $name (property)', (target) => {
  const database = freshDatabase(target);
  let seal: SecretsSeal;
  beforeAll(async () => {
    const key32 = randomBytes(32);
    seal = await SecretsSeal.open(bindStores(database().db, database().dialect).secretsKeyring, new ManualClock(), () => key32);
  });

  it('never loses a version in grace and never serves one past it', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: PERIOD }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.array(fc.oneof(fc.constant<Step>({ op: 'write' }), fc.constant<Step>({ op: 'tick' }), fc.integer({ min: 1, max: 2 * PERIOD * 1000 }).map((ms): Step => ({ op: 'advance', ms }))), { minLength: 1, maxLength: 25 }),
        async (grace, maxVersions, generator, steps) => {
          const clock = new ManualClock(Date.UTC(2026, 0, 1));
          const transact = transactor(database());
          const stores = bindStores(database().db, database().dialect);
          const key: KvKey = { tenant: 'acme', mount: 'kv_p', path: `p${run++}` };
          const ctx = (s = stores): KvContext => ({ store: s.kv, sealer: seal.barrier, clock, rotation: { store: s.rotation, mountPath: 'secret' } });
          const scheduler = new RotationScheduler({
            store: stores.rotation,
            transact,
            sealer: seal.barrier,
            clock,
            lock: { run: (work) => work() },
            auditRow: (e) => ({ tenant: e.tenant, recordedAt: e.time, payload: JSON.stringify(e) }),
          });
          await transact(async (s) => {
            await writeSecret(ctx(s), key, { password: 'v1', user: 'u' }, undefined);
            const meta = await s.kv.lockMetadata(key, clock.now().toISOString());
            await s.kv.putMetadata({ ...meta, maxVersions });
            const policy = applyRotationChange(key, 'secret', undefined, { periodSeconds: PERIOD, graceSeconds: grace, generator: generator ? { keys: { password: { length: 16, charset: 'alnum' } } } : null }, clock.now());
            await s.rotation.putPolicy(policy!);
          });
          let n = 1;
          for (const step of steps) {
            if (step.op === 'write') await transact((s) => writeSecret(ctx(s), key, { password: `app${++n}`, user: 'u' }, undefined));
            else if (step.op === 'advance') clock.advance(step.ms);
            else expect((await scheduler.tick()).failed).toBe(0);

            const now = clock.now().toISOString();
            const meta = (await stores.kv.metadata(key))!;
            expect((await readSecret(ctx(), key, undefined))?.data).toMatchObject({ user: 'u' });
            const graced = await database().db.selectFrom('secrets_grace_versions').selectAll().where('path', '=', key.path).execute();
            for (const g of graced) {
              const read = await readSecret(ctx(), key, Number(g.version));
              if (g.readable_until > now) expect(read?.data, `version ${g.version} in grace`).toMatchObject({ user: 'u' });
              else expect(read?.data ?? null, `version ${g.version} past grace`).toBeNull();
            }
            for (const v of await stores.kv.versions(key)) {
              const inWindow = v.version >= meta.currentVersion - maxVersions + 1;
              expect(inWindow || graced.some((g) => Number(g.version) === v.version), `version ${v.version} kept`).toBe(true);
            }
          }
        },
      ),
      { numRuns: target.name === 'sqlite' ? 40 : 10 },
    );
  });
});
