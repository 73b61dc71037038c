/** `rampart policy show [N]`: one version's content and its diff against the previous one. */
import type { Command } from 'commander';
import { getPolicyVersion, listPolicyStores } from '../../sdk/policies.js';
import type { RampartClient } from '../../sdk/client.js';
import type { Cli, ClientFlags } from '../main.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';
import { printVersion } from './policy-version-view.js';

/**
 * Adds `show [version]` under the `policy` group; without a version it shows the active one.
 *
 * @example
 * ```ts
 * registerPolicyShow(policyGroup, cli); // rampart policy show 3 --store docs
 * ```
 */
export function registerPolicyShow(policy: Command, cli: Cli): void {
  withStoreOption(cli.clientCommand(policy, 'show [version]', 'Show a version (default: the active one) with its diff against the previous'))
    .action(async (version: string | undefined, flags: ClientFlags & StoreFlags) => {
      const n = version === undefined ? undefined : cli.positiveInteger(version);
      const v = await cli.withClient(flags, async (client) => getPolicyVersion(client, flags.store, n ?? (await activeVersion(client, flags.store))));
      if (flags.format === 'json') return cli.out.json(v);
      printVersion(cli.out, v);
      for (const reason of v.reasons ?? []) cli.out.line(`rejected: ${reason}`);
      for (const [file, text] of Object.entries(v.policies)) cli.out.line(`\n==> ${file} <==\n${text.trimEnd()}`);
      if (v.schema !== null) cli.out.line(`\n==> schema.cedarschema <==\n${v.schema.trimEnd()}`);
      for (const [file, text] of Object.entries(v.tests)) cli.out.line(`\n==> ${file} <==\n${text.trimEnd()}`);
      const diffs = Object.values(v.diff.files);
      if (v.diff.against !== null) cli.out.line(`\n--- changes since version ${v.diff.against} ---\n${diffs.join('').trimEnd() || '(none)'}`);
    });
}

async function activeVersion(client: RampartClient, store: string): Promise<number> {
  let cursor: string | undefined;
  do {
    const page = await listPolicyStores(client, { cursor });
    const found = page.items.find((s) => s.store === store);
    if (found) {
      if (found.active_version === null) throw new Error(`policy store "${store}" has no active version; name one`);
      return found.active_version;
    }
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  throw new Error(`no policy store "${store}"`);
}
