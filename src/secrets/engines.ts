import type { EngineFactory } from './engine.js';
import { kvEngine } from './kv/engine.js';
import { versionedKvEngine } from './kv1/versioned-kv.js';
import { databaseEngine } from './database/engine.js';
import { transitEngine } from './transit/engine.js';

/**
 * The secrets engines this build offers, one line each (see the guide at the top of engine.ts).
 * `sys/mounts` accepts exactly these types.
 */
export const BUILTIN_ENGINES: readonly EngineFactory[] = [
  // `kv` with options.version "1" (src/secrets/kv1/) or "2" (src/secrets/kv/).
  versionedKvEngine(kvEngine),
  transitEngine,
  databaseEngine,
];
