/** `rampart policy stores` and `rampart policy reseed`: the tenant's policy stores. */
import type { Command } from 'commander';
import { listPolicyStores, reseedRampartPolicies } from '../../sdk/policies.js';
import type { Cli, ClientFlags } from '../main.js';
import { showingRejection } from './policy-rejection.js';
import { printVersion } from './policy-version-view.js';

/**
 * Adds `stores` and `reseed` under the `policy` group.
 *
 * @example
 * ```ts
 * registerPolicyStores(policyGroup, cli); // rampart policy stores; rampart policy reseed --tenant acme
 * ```
 */
export function registerPolicyStores(policy: Command, cli: Cli): void {
  cli
    .clientCommand(policy, 'stores', "List the tenant's policy stores")
    .option('--limit <n>', 'page size', cli.positiveInteger)
    .option('--cursor <cursor>', 'continue after a previous page')
    .action(async (flags: ClientFlags & { limit?: number; cursor?: string }) => {
      const page = await cli.withClient(flags, (client) => listPolicyStores(client, { limit: flags.limit, cursor: flags.cursor }));
      if (flags.format === 'json') return cli.out.json(page);
      cli.out.table(
        ['STORE', 'ACTIVE', 'LATEST'],
        page.items.map((s) => [s.store, s.active_version === null ? '-' : String(s.active_version), String(s.latest_version)]),
      );
      if (page.next_cursor) cli.out.note(`More results: rampart policy stores --cursor ${page.next_cursor}`);
    });
  cli
    .clientCommand(policy, 'reseed', "Push the current seed policies to the tenant's rampart store")
    .option('-m, --message <text>', 'why')
    .action(async (flags: ClientFlags & { message?: string }) => {
      const v = await showingRejection(cli.out, () => cli.withClient(flags, (client) => reseedRampartPolicies(client, flags.message)));
      if (flags.format === 'json') return cli.out.json(v);
      printVersion(cli.out, v);
    });
}
