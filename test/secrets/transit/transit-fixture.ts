import { randomBytes } from 'node:crypto';
import { beforeAll } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { Barrier } from '../../../src/secrets/barrier.js';
import type { CreateKeyOptions } from '../../../src/secrets/transit/keys.js';
import { TransitKeys } from '../../../src/secrets/transit/keys.js';
import type { OpenKey } from '../../../src/secrets/transit/open-key.js';
import type { TransitKeyRef } from '../../../src/secrets/transit/store.js';
import { SqlTransitKeyStore } from '../../../src/store/transit-key-store.js';
import { TEST_DATABASES } from '../../support/databases.js';
import { freshDatabase } from '../../support/fresh-database.js';

/**
 * Transit domain tests run on a real store (SQLite; the store contract suite covers PostgreSQL)
 * and a real, unsealed barrier, so that key material goes the way it goes in production.
 */
export interface TransitFixture {
  readonly clock: ManualClock;
  readonly barrier: Barrier;
  store(): SqlTransitKeyStore;
  keys(): TransitKeys;
  /** Creates the key under a fresh name and opens it. */
  fresh(options?: Partial<CreateKeyOptions>): Promise<OpenKey>;
  reopen(key: OpenKey): Promise<OpenKey>;
}

let counter = 0;

export function transitFixture(): TransitFixture {
  const database = freshDatabase(TEST_DATABASES[0]!);
  const clock = new ManualClock();
  const barrier = new Barrier();
  let blob: string | undefined;
  beforeAll(async () => {
    await barrier.unseal(randomBytes(32), { load: async () => blob, initialize: async (c) => ((blob = c), true) }, clock);
  });
  const store = () => new SqlTransitKeyStore(database().db);
  const keys = () => new TransitKeys(store(), barrier, clock);
  return {
    clock,
    barrier,
    store,
    keys,
    async fresh(options = {}) {
      const ref: TransitKeyRef = { tenant: 'acme', mount: 'transit_test', name: `key-${++counter}` };
      await keys().create(ref, { type: 'aes256-gcm96', derived: false, exportable: false, allowPlaintextBackup: false, ...options });
      return keys().open(ref);
    },
    reopen: (key) => keys().open(key.ref),
  };
}

/** The code of the error `work` rejects with (undefined when it succeeds). */
export async function codeOf(work: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await work();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}
