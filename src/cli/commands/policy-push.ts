/** `rampart policy push DIR`: a directory of Cedar files, schema and tests as a new version. */
import type { Command } from 'commander';
import { pushPolicies } from '../../sdk/policies.js';
import type { Cli, ClientFlags } from '../main.js';
import { readPolicyDirectory } from './policy-directory.js';
import { showingRejection } from './policy-rejection.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';
import { printVersion } from './policy-version-view.js';

interface PushFlags extends ClientFlags, StoreFlags {
  message?: string;
}

/**
 * Adds `push <dir>` under the `policy` group.
 *
 * @example
 * ```ts
 * registerPolicyPush(policyGroup, cli); // rampart policy push ./policies --store docs -m "owners read"
 * ```
 */
export function registerPolicyPush(policy: Command, cli: Cli): void {
  withStoreOption(cli.clientCommand(policy, 'push <dir>', 'Push .cedar files, schema.cedarschema and test YAML as a new version'))
    .option('-m, --message <text>', 'what changed and why (default: "push <dir>")')
    .action(async (dir: string, flags: PushFlags) => {
      const read = await readPolicyDirectory(dir);
      const body = {
        policies: read.policies,
        ...(read.schema === undefined ? {} : { schema: read.schema }),
        ...(Object.keys(read.tests).length > 0 ? { tests: read.tests } : {}),
        message: flags.message ?? `push ${dir}`,
      };
      const v = await showingRejection(cli.out, () => cli.withClient(flags, (client) => pushPolicies(client, flags.store, body)));
      if (flags.format === 'json') return cli.out.json(v);
      printVersion(cli.out, v);
    });
}
