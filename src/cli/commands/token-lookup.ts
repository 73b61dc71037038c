/** `rampart token lookup [accessor]`: the caller's own token when no accessor is given. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

/**
 * Adds `lookup [accessor]` under the `token` group.
 *
 * @example
 * ```ts
 * registerTokenLookup(tokenGroup, cli); // rampart token lookup acc_123
 * ```
 */
export function registerTokenLookup(token: Command, cli: Cli): void {
  cli
    .clientCommand(token, 'lookup [accessor]', 'Show a token by accessor (default: your own)')
    .action(async (accessor: string | undefined, flags: ClientFlags) => {
      const info = await cli.withClient(flags, (client) => client.lookupToken(accessor));
      if (flags.format === 'json') return cli.out.json(info);
      cli.out.fields([
        ['accessor', info.accessor],
        ['tenant', info.tenant],
        ['policies', JSON.stringify(info.policies)],
        ['display_name', info.display_name ?? 'n/a'],
        ['created_at', info.created_at],
        ['expires_at', info.expires_at ?? 'never'],
      ]);
    });
}
