/** `rampart policy diff A B`: unified diffs between two versions of a store. */
import type { Command } from 'commander';
import { diffPolicyVersions } from '../../sdk/policies.js';
import type { Cli, ClientFlags } from '../main.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';

/**
 * Adds `diff <from> <to>` under the `policy` group.
 *
 * @example
 * ```ts
 * registerPolicyDiff(policyGroup, cli); // rampart policy diff 3 5 --store docs
 * ```
 */
export function registerPolicyDiff(policy: Command, cli: Cli): void {
  withStoreOption(cli.clientCommand(policy, 'diff <from> <to>', 'Show what changed between two versions, as unified diffs'))
    .action(async (from: string, to: string, flags: ClientFlags & StoreFlags) => {
      const [a, b] = [cli.positiveInteger(from), cli.positiveInteger(to)];
      const diff = await cli.withClient(flags, (client) => diffPolicyVersions(client, flags.store, a, b));
      if (flags.format === 'json') return cli.out.json(diff);
      const text = Object.values(diff.files).join('');
      if (text === '') cli.out.note(`versions ${a} and ${b} have the same content`);
      else process.stdout.write(text);
    });
}
