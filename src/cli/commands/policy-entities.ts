/** `rampart policy entities put FILE` and `policy entities get`: a store's entity store. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { type CedarEntity, getEntities, putEntities } from '../../sdk/policies.js';
import type { Cli, ClientFlags } from '../main.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';

/**
 * Adds the `entities` group (`put <file>`, `get`) under the `policy` group.
 *
 * @example
 * ```ts
 * registerPolicyEntities(policyGroup, cli); // rampart policy entities put entities.json --store docs
 * ```
 */
export function registerPolicyEntities(policy: Command, cli: Cli): void {
  const entities = policy.command('entities').description("Replace or read a policy store's entities");
  withStoreOption(cli.clientCommand(entities, 'put <file>', 'Replace the entities with a Cedar entity JSON array from a file'))
    .action(async (file: string, flags: ClientFlags & StoreFlags) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(file, 'utf8'));
      } catch (err) {
        throw new Error(`${file} is not a readable JSON file: ${(err as Error).message}`, { cause: err });
      }
      if (!Array.isArray(parsed)) throw new Error(`${file} must hold a JSON array of Cedar entities`);
      const written = await cli.withClient(flags, (client) => putEntities(client, flags.store, parsed as CedarEntity[]));
      if (flags.format === 'json') return cli.out.json(written);
      cli.out.fields([
        ['revision', String(written.revision)],
        ['count', String(written.count)],
      ]);
    });
  withStoreOption(cli.clientCommand(entities, 'get', 'Print the entities (JSON) and their revision'))
    .action(async (flags: ClientFlags & StoreFlags) => {
      cli.out.json(await cli.withClient(flags, (client) => getEntities(client, flags.store)));
    });
}
