/** `rampart policy versions`: a store's versions, newest first. */
import type { Command } from 'commander';
import { listPolicyVersions } from '../../sdk/policies.js';
import type { Cli, ClientFlags } from '../main.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';

interface VersionsFlags extends ClientFlags, StoreFlags {
  limit?: number;
  cursor?: string;
}

/**
 * Adds `versions` under the `policy` group.
 *
 * @example
 * ```ts
 * registerPolicyVersions(policyGroup, cli); // rampart policy versions --store docs
 * ```
 */
export function registerPolicyVersions(policy: Command, cli: Cli): void {
  withStoreOption(cli.clientCommand(policy, 'versions', "List a policy store's versions, newest first"))
    .option('--limit <n>', 'page size', cli.positiveInteger)
    .option('--cursor <cursor>', 'continue after a previous page')
    .action(async (flags: VersionsFlags) => {
      const page = await cli.withClient(flags, (client) => listPolicyVersions(client, flags.store, { limit: flags.limit, cursor: flags.cursor }));
      if (flags.format === 'json') return cli.out.json(page);
      cli.out.table(
        ['VERSION', 'STATUS', 'CREATED_AT', 'AUTHOR', 'MESSAGE'],
        page.items.map((v) => [String(v.version), v.status, v.created_at, v.author, v.message]),
      );
      if (page.next_cursor) cli.out.note(`More results: rampart policy versions --store ${flags.store} --cursor ${page.next_cursor}`);
    });
}
