/** `rampart ca status`: the CA hierarchy and where each certificate is in its rotation. */
import type { Command } from 'commander';
import { type CaStatus, getCaStatus } from '../../sdk/ca.js';
import type { Cli, ClientFlags } from '../main.js';

/** Prints a CA status answer as a table (shared by the ca commands that return one). */
export function printCaStatus(cli: Cli, flags: ClientFlags, status: CaStatus): void {
  if (flags.format === 'json') return cli.out.json(status);
  cli.out.table(
    ['role', 'status', 'subject', 'key_id', 'not_after', 'key_online', 'activate_after'],
    status.authorities.map((a) => [a.role, a.status, a.subject, a.key_id, a.not_after, String(a.key_online), a.activate_after ?? '']),
  );
  cli.out.note(`bundle sequence ${status.bundle_sequence}`);
}

/**
 * Adds `status` under the `ca` group.
 *
 * @example
 * ```ts
 * registerCaStatus(caGroup, cli); // rampart ca status
 * ```
 */
export function registerCaStatus(ca: Command, cli: Cli): void {
  cli
    .clientCommand(ca, 'status', 'Show the roots, cross-certificates and intermediates with their rotation state (operator)')
    .action(async (flags: ClientFlags) => printCaStatus(cli, flags, await cli.withClient(flags, (client) => getCaStatus(client))));
}
