/** `rampart workload delete`: removes a registration entry; SVIDs already issued stay valid until they expire or are revoked. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

/**
 * Adds `delete <id>` under the `workload` group.
 *
 * @example
 * ```ts
 * registerWorkloadDelete(workload, cli); // rampart workload delete reg_…
 * ```
 */
export function registerWorkloadDelete(workload: Command, cli: Cli): void {
  cli.clientCommand(workload, 'delete <id>', 'Delete a registration entry').action(async (id: string, flags: ClientFlags) => {
    await cli.withClient(flags, (c) => c.request<undefined>('DELETE', `/v1/pki/registrations/${encodeURIComponent(id)}`));
    if (flags.format === 'json') return cli.out.json({ deleted: id });
    cli.out.line(`Deleted registration entry ${id}`);
  });
}
