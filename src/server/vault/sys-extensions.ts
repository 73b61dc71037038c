import type { Runtime } from '../../runtime.js';
import type { VaultHandler } from './handler.js';
import { leaseHandler } from './leases.js';
import { wrappingHandler } from './wrapping.js';

/**
 * Further trees under `sys/` by their first segment (`leases` → `sys/leases/…`), one line each:
 * `leases: (runtime) => leaseHandler(runtime)`. The handler sees the path below `sys/<name>/`
 * and plans and handles like any VaultHandler (handler.ts); ACL paths stay `sys/<name>/…`.
 */
export const SYS_EXTENSIONS: Readonly<Record<string, (runtime: Runtime) => VaultHandler>> = {
  leases: (runtime) => leaseHandler(runtime),
  renew: (runtime) => leaseHandler(runtime, 'renew'),
  revoke: (runtime) => leaseHandler(runtime, 'revoke'),
  'revoke-prefix': (runtime) => leaseHandler(runtime, 'revoke-prefix'),
  // sys/wrapping/wrap and rewrap; unwrap and lookup are routes of their own (wrapping.ts).
  wrapping: (runtime) => wrappingHandler(runtime),
};
