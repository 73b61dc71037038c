/** `rampart token revoke <accessor>`. Revocation is by accessor so no secret is typed or logged. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

/**
 * Adds `revoke <accessor>` under the `token` group.
 *
 * @example
 * ```ts
 * registerTokenRevoke(tokenGroup, cli); // rampart token revoke acc_123
 * ```
 */
export function registerTokenRevoke(token: Command, cli: Cli): void {
  cli
    .clientCommand(token, 'revoke <accessor>', 'Revoke a token by accessor')
    .action(async (accessor: string, flags: ClientFlags) => {
      await cli.withClient(flags, (client) => client.revokeToken(accessor));
      // The API answers 204 with no body, so `--format json` prints nothing.
      if (flags.format === 'text') cli.out.line(`Success! Revoked token with accessor ${accessor}`);
    });
}
