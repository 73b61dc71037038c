/** `rampart workload show`: one registration entry. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

/** A registration entry as the API returns it. */
export interface RegistrationView {
  id: string;
  spiffe_id: string;
  parent: string;
  selectors: string[];
  dns_names: string[];
  ttl_seconds: number | null;
  created_at: string;
}

/** Prints an entry as JSON or as a Key/Value table. */
export function printRegistration(cli: Cli, flags: ClientFlags, e: RegistrationView): void {
  if (flags.format === 'json') return cli.out.json(e);
  cli.out.fields([
    ['id', e.id],
    ['spiffe_id', e.spiffe_id],
    ['parent', e.parent],
    ['selectors', e.selectors.join(', ')],
    ['dns_names', e.dns_names.join(', ')],
    ['ttl', e.ttl_seconds === null ? 'default' : `${e.ttl_seconds}s`],
    ['created_at', e.created_at],
  ]);
}

/**
 * Adds `show <id>` under the `workload` group.
 *
 * @example
 * ```ts
 * registerWorkloadShow(workload, cli); // rampart workload show reg_…
 * ```
 */
export function registerWorkloadShow(workload: Command, cli: Cli): void {
  cli.clientCommand(workload, 'show <id>', 'Show a registration entry').action(async (id: string, flags: ClientFlags) => {
    printRegistration(cli, flags, await cli.withClient(flags, (c) => c.request<RegistrationView>('GET', `/v1/pki/registrations/${encodeURIComponent(id)}`)));
  });
}
