/** `rampart tenant create <name>`. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

/**
 * Adds `create <name>` under the `tenant` group.
 *
 * @example
 * ```ts
 * registerTenantCreate(tenantGroup, cli); // rampart tenant create acme
 * ```
 */
export function registerTenantCreate(tenant: Command, cli: Cli): void {
  cli.clientCommand(tenant, 'create <name>', 'Create a tenant').action(async (name: string, flags: ClientFlags) => {
    const created = await cli.withClient(flags, (client) => client.createTenant(name));
    if (flags.format === 'json') return cli.out.json(created);
    cli.out.fields([
      ['name', created.name],
      ['created_at', created.created_at],
    ]);
  });
}
