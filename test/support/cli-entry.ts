// Runs the CLI from source, as bin/rampart.js runs it from dist/: `node --import tsx test/support/cli-entry.ts …`.
import { main } from '../../src/cli/main.js';

await main(process.argv);
