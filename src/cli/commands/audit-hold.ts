/**
 * `rampart audit hold --reason …`, `rampart audit release --reason …` and
 * `rampart audit hold-status`: the audit log's legal hold. While it is on, retention
 * (`--audit-retention`) prunes no payload. Operator tenant `default` only; every change is
 * itself an audit event.
 */
import type { Command } from 'commander';
import type { LegalHold } from '../../sdk/client.js';
import type { Cli, ClientFlags } from '../main.js';

interface HoldFlags extends ClientFlags {
  reason: string;
}

/**
 * Adds `hold`, `release` and `hold-status` under the `audit` group.
 *
 * @example
 * ```ts
 * registerAuditHold(auditGroup, cli); // rampart audit hold --reason "case 2026-114"
 * ```
 */
export function registerAuditHold(audit: Command, cli: Cli): void {
  const print = (flags: ClientFlags, hold: LegalHold): void => {
    if (flags.format === 'json') return cli.out.json(hold);
    cli.out.fields([
      ['enabled', String(hold.enabled)],
      ['reason', hold.reason],
      ['since', hold.since ?? '-'],
    ]);
  };
  cli
    .clientCommand(audit, 'hold', 'Place a legal hold: no audit payload is pruned until it is released')
    .requiredOption('--reason <text>', 'why (a case number, a ticket); recorded in the audit log')
    .action(async (flags: HoldFlags) => print(flags, await cli.withClient(flags, (client) => client.setLegalHold(true, flags.reason))));
  cli
    .clientCommand(audit, 'release', 'Release the legal hold: retention resumes pruning')
    .option('--reason <text>', 'why; recorded in the audit log', 'released')
    .action(async (flags: HoldFlags) => print(flags, await cli.withClient(flags, (client) => client.setLegalHold(false, flags.reason))));
  cli
    .clientCommand(audit, 'hold-status', 'Show whether a legal hold is on, why and since when')
    .action(async (flags: ClientFlags) => print(flags, await cli.withClient(flags, (client) => client.getLegalHold())));
}
