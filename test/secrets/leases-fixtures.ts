import { randomBytes } from 'node:crypto';
import type { Clock } from '../../src/core/clock.js';
import { Barrier } from '../../src/secrets/barrier.js';
import type { KeyringStore } from '../../src/secrets/store.js';
import type { LeaseTransact } from '../../src/secrets/leases/store.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import type { StoreDatabase } from '../../src/store/database.js';
import { SqlLeaseStore } from '../../src/store/lease-store.js';

/** An unsealed barrier over an in-memory keyring: the real AES-GCM sealing, no store needed. */
export async function memoryBarrier(clock: Clock): Promise<Barrier> {
  let blob: string | undefined;
  const keyring: KeyringStore = {
    load: async () => blob,
    initialize: async (c) => {
      if (blob !== undefined) return false;
      blob = c;
      return true;
    },
  };
  const barrier = new Barrier();
  await barrier.unseal(randomBytes(32), keyring, clock);
  return barrier;
}

/** The lease manager's transaction over a test database: leases and audit rows commit together. */
export function leaseTransact(database: StoreDatabase): LeaseTransact {
  return (work) => database.db.transaction().execute((trx) => work({ leases: new SqlLeaseStore(trx), audit: new SqlAuditStore(trx, database.dialect) }));
}
