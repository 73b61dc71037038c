/**
 * The `rampart` package entry: the TypeScript SDK. Named exports only, so the public surface is
 * exactly what `src/sdk/index.ts` lists.
 */
export * from './sdk/index.js';
