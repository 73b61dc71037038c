/**
 * `rampart audit events`: one page of audit events as JSON lines, so the output pipes straight
 * into `jq` or a log shipper. `--format json` prints the whole page object instead.
 */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';
import { type AuditFilterFlags, addAuditFilters, auditQueryOf } from './audit-filters.js';

interface AuditEventsFlags extends ClientFlags, AuditFilterFlags {
  limit?: number;
  cursor?: string;
}

/**
 * Adds `events [filters] [--limit n] [--cursor c]` under the `audit` group.
 *
 * @example
 * ```ts
 * registerAuditEvents(auditGroup, cli); // rampart audit events --limit 100 | jq .
 * ```
 */
export function registerAuditEvents(audit: Command, cli: Cli): void {
  addAuditFilters(cli.clientCommand(audit, 'events', 'Print audit events as JSON lines'))
    .option('--limit <n>', 'page size', cli.positiveInteger)
    .option('--cursor <cursor>', 'continue after a previous page')
    .action(async (flags: AuditEventsFlags) => {
      const page = await cli.withClient(flags, (client) =>
        client.listAuditEvents({ ...auditQueryOf(flags), limit: flags.limit, cursor: flags.cursor }),
      );
      if (flags.format === 'json') return cli.out.json(page);
      for (const event of page.items) cli.out.line(JSON.stringify(event));
      if (page.next_cursor) cli.out.note(`More results: rampart audit events --cursor ${page.next_cursor}`);
    });
}

