/** `rampart health`: is the server up, which version, which store. Needs no token. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

/**
 * Adds `rampart health` to `program`.
 *
 * @example
 * ```ts
 * registerHealth(program, cli); // rampart health --addr https://127.0.0.1:8443
 * ```
 */
export function registerHealth(program: Command, cli: Cli): void {
  cli.clientCommand(program, 'health', 'Check that the server is up').action(async (flags: ClientFlags) => {
    const health = await cli.withClient(flags, (client) => client.health());
    if (flags.format === 'json') return cli.out.json(health);
    cli.out.fields([
      ['status', health.status],
      ['version', health.version],
      ['store', health.store],
    ]);
  });
}
