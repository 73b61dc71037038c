/** `rampart tenant list`: one page of tenants; the next-page cursor is a hint on stderr. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

interface TenantListFlags extends ClientFlags {
  limit?: number;
  cursor?: string;
}

/**
 * Adds `list [--limit n] [--cursor c]` under the `tenant` group.
 *
 * @example
 * ```ts
 * registerTenantList(tenantGroup, cli); // rampart tenant list --limit 20
 * ```
 */
export function registerTenantList(tenant: Command, cli: Cli): void {
  cli
    .clientCommand(tenant, 'list', 'List tenants')
    .option('--limit <n>', 'page size', cli.positiveInteger)
    .option('--cursor <cursor>', 'continue after a previous page')
    .action(async (flags: TenantListFlags) => {
      const page = await cli.withClient(flags, (client) =>
        client.listTenants({ limit: flags.limit, cursor: flags.cursor }),
      );
      if (flags.format === 'json') return cli.out.json(page);
      if (page.items.length === 0) cli.out.line('No tenants.');
      else cli.out.table(['NAME', 'CREATED_AT'], page.items.map((t) => [t.name, t.created_at]));
      if (page.next_cursor) cli.out.note(`More results: rampart tenant list --cursor ${page.next_cursor}`);
    });
}

