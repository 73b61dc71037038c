/** `rampart workload list`: the tenant's registration entries, a page at a time. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';
import type { RegistrationView } from './workload-show.js';

interface ListFlags extends ClientFlags {
  limit?: number;
  cursor?: string;
}

/**
 * Adds `list [--limit N] [--cursor C]` under the `workload` group.
 *
 * @example
 * ```ts
 * registerWorkloadList(workload, cli); // rampart workload list --limit 50
 * ```
 */
export function registerWorkloadList(workload: Command, cli: Cli): void {
  cli
    .clientCommand(workload, 'list', 'List registration entries')
    .option('--limit <n>', 'page size (1-999)', cli.positiveInteger)
    .option('--cursor <cursor>', 'next_cursor of the previous page')
    .action(async (flags: ListFlags) => {
      const page = await cli.withClient(flags, (c) =>
        c.request<{ items: RegistrationView[]; next_cursor: string | null }>('GET', '/v1/pki/registrations', { query: { limit: flags.limit, cursor: flags.cursor } }),
      );
      if (flags.format === 'json') return cli.out.json(page);
      cli.out.table(['ID', 'SPIFFE ID', 'PARENT', 'SELECTORS'], page.items.map((e) => [e.id, e.spiffe_id, e.parent, e.selectors.join(',')]));
      if (page.next_cursor !== null) cli.out.note(`more: --cursor ${page.next_cursor}`);
    });
}
