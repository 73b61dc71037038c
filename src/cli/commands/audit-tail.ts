/**
 * `rampart audit tail [-f]`: the addressed tenant's recent audit events as JSON lines, and with
 * `--follow` every new one as it is written, like `tail -f` on a log file. Following polls the
 * events API from the last cursor, so nothing is skipped or printed twice between polls.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { parseDuration } from '../../core/duration.js';
import type { Cli, ClientFlags } from '../main.js';
import { type AuditFilterFlags, addAuditFilters, auditQueryOf } from './audit-filters.js';

interface AuditTailFlags extends ClientFlags, AuditFilterFlags {
  follow?: boolean;
  interval: number;
}

const PAGE = 500;

/** `--since` also takes a duration back from now (`10m`, `1h`), the common case for tailing. */
function sinceOf(value: string | undefined, now: Date): string | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  return ms === undefined ? value : new Date(now.getTime() - ms).toISOString();
}

function intervalOf(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 100) throw new InvalidArgumentError('expected a duration of at least 100ms, e.g. 1s');
  return ms;
}

/**
 * Adds `tail [filters] [--since 10m] [-f] [--interval 1s]` under the `audit` group.
 *
 * @example
 * ```ts
 * registerAuditTail(auditGroup, cli); // rampart audit tail -f --outcome denied
 * ```
 */
export function registerAuditTail(audit: Command, cli: Cli): void {
  addAuditFilters(cli.clientCommand(audit, 'tail', 'Print recent audit events as JSON lines; -f keeps following'))
    .option('-f, --follow', 'keep printing new events until interrupted')
    .option('--interval <duration>', 'how often to poll when following', intervalOf, 1000)
    .action(async (flags: AuditTailFlags) => {
      const query = { ...auditQueryOf(flags), since: sinceOf(flags.since ?? '10m', new Date()) };
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await cli.withClient(flags, async (client) => {
          let cursor: string | undefined;
          for (;;) {
            const page = await client.listAuditEvents({ ...query, limit: PAGE, cursor });
            for (const item of page.items) cli.out.line(JSON.stringify(item));
            cursor = page.resume_cursor;
            if (page.next_cursor) continue;
            if (!flags.follow || stop.signal.aborted) return;
            await sleep(flags.interval, undefined, { signal: stop.signal }).catch(() => undefined);
            if (stop.signal.aborted) return;
          }
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
