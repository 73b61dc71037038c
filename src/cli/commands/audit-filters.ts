/**
 * The audit query flags shared by `rampart audit events` and `rampart audit tail`.
 */
import { type Command, Option } from 'commander';
import type { AuditEventQuery } from '../../sdk/index.js';

export interface AuditFilterFlags {
  since?: string;
  until?: string;
  principal?: string;
  action?: string;
  resource?: string;
  outcome?: AuditEventQuery['outcome'];
}

/**
 * Adds the filter options to `command`.
 *
 * @example
 * ```ts
 * addAuditFilters(cli.clientCommand(audit, 'events', '…')); // --since --until --principal …
 * ```
 */
export function addAuditFilters(command: Command): Command {
  return command
    .option('--since <time>', 'RFC 3339 time (inclusive)')
    .option('--until <time>', 'RFC 3339 time (exclusive)')
    .option('--principal <id>', 'token accessor, SPIFFE ID or Type::"id"')
    .option('--action <action>', 'Cedar action, e.g. token:create')
    .option('--resource <id>', 'resource id or Type::"id"')
    .addOption(new Option('--outcome <outcome>', 'outcome').choices(['success', 'denied', 'invalid', 'failed', 'unauthenticated']));
}

export function auditQueryOf(flags: AuditFilterFlags): AuditEventQuery {
  const { since, until, principal, action, resource, outcome } = flags;
  return { since, until, principal, action, resource, outcome };
}
