#!/usr/bin/env node
// The published entry point: runs the compiled CLI (built by `npm install` through the prepare script).
import { main } from '../dist/cli/main.js';

main(process.argv).catch((err) => {
  process.stderr.write(`rampart: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
