import type { EngineFactory } from './engine.js';
import { kvEngine } from './kv/engine.js';
import { databaseEngine } from './database/engine.js';
import { transitEngine } from './transit/engine.js';

/**
 * The secrets engines this build offers, one line each (see the guide at the top of engine.ts).
 * `sys/mounts` accepts exactly these types.
 */
export const BUILTIN_ENGINES: readonly EngineFactory[] = [
  kvEngine,
  transitEngine,
  databaseEngine,
];
