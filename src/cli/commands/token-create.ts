/**
 * `rampart token create`: the one command that prints a secret, because the server shows a new
 * token exactly once. Output mirrors `vault token create`.
 */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

interface TokenCreateFlags extends ClientFlags {
  ttl?: string;
  policy: string[];
  displayName?: string;
}

/**
 * Adds `create [--ttl 1h] [--policy <name>]... [--display-name <s>]` under the `token` group.
 *
 * @example
 * ```ts
 * registerTokenCreate(tokenGroup, cli); // rampart token create --policy admin --ttl 1h
 * ```
 */
export function registerTokenCreate(token: Command, cli: Cli): void {
  cli
    .clientCommand(token, 'create', 'Create a token (the secret is shown once)')
    .option('--ttl <duration>', 'lifetime, e.g. 30m or 1h')
    .option('--policy <name>', 'attach a policy (repeatable)', (value: string, previous: string[]) => [...previous, value], [])
    .option('--display-name <name>', 'label shown in lookups and audit events')
    .action(async (flags: TokenCreateFlags) => {
      const created = await cli.withClient(flags, (client) =>
        client.createToken({ ttl: flags.ttl, policies: flags.policy, displayName: flags.displayName }),
      );
      if (flags.format === 'json') return cli.out.json(created);
      cli.out.fields([
        ['token', created.token],
        ['token_accessor', created.accessor],
        ['token_policies', JSON.stringify(created.policies)],
        ['tenant', created.tenant],
        ['display_name', created.display_name ?? 'n/a'],
        ['expires_at', created.expires_at ?? 'never'],
      ]);
    });
}
