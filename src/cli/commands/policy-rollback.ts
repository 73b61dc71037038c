/** `rampart policy rollback N`: a new version whose content equals version N. */
import type { Command } from 'commander';
import { rollbackPolicies } from '../../sdk/policies.js';
import type { Cli, ClientFlags } from '../main.js';
import { showingRejection } from './policy-rejection.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';
import { printVersion } from './policy-version-view.js';

/**
 * Adds `rollback <version>` under the `policy` group.
 *
 * @example
 * ```ts
 * registerPolicyRollback(policyGroup, cli); // rampart policy rollback 3 --store docs
 * ```
 */
export function registerPolicyRollback(policy: Command, cli: Cli): void {
  withStoreOption(cli.clientCommand(policy, 'rollback <version>', 'Activate the content of an older version again, as a new version'))
    .option('-m, --message <text>', 'why (default: "rollback to version N")')
    .action(async (version: string, flags: ClientFlags & StoreFlags & { message?: string }) => {
      const n = cli.positiveInteger(version);
      const v = await showingRejection(cli.out, () => cli.withClient(flags, (client) => rollbackPolicies(client, flags.store, n, flags.message)));
      if (flags.format === 'json') return cli.out.json(v);
      printVersion(cli.out, v);
    });
}
