/** `rampart workload register`: a registration entry mapping selectors under a parent to a SPIFFE ID. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';
import { printRegistration, type RegistrationView } from './workload-show.js';

interface RegisterFlags extends ClientFlags {
  selector: string[];
  parent: string;
  ttl?: string;
  dns: string[];
}

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Adds `register <spiffe-id> --selector <type:value>... --parent <id|selector> [--ttl <d>] [--dns <name>]...`
 * under the `workload` group.
 *
 * @example
 * ```ts
 * registerWorkloadRegister(workload, cli); // rampart workload register spiffe://default.rampart.local/ns/pay/sa/api --selector k8s:sa:pay/api --parent k8s:cluster:prod
 * ```
 */
export function registerWorkloadRegister(workload: Command, cli: Cli): void {
  cli
    .clientCommand(workload, 'register <spiffe-id>', 'Register a workload: the SPIFFE ID its selectors earn under a parent agent')
    .requiredOption('--selector <type:value>', 'attestation evidence the workload must match, repeatable (k8s:sa:pay/api, unix:uid:1000)', collect, [])
    .requiredOption('--parent <id-or-selector>', "the agent's SPIFFE ID, or a node selector such as k8s:cluster:prod")
    .option('--ttl <duration>', 'lifetime of the SVIDs issued for it (default 1h)')
    .option('--dns <name>', 'DNS SAN to add, repeatable', collect, [])
    .action(async (spiffeId: string, flags: RegisterFlags) => {
      const body = { spiffe_id: spiffeId, parent: flags.parent, selectors: flags.selector, ...(flags.dns.length > 0 ? { dns_names: flags.dns } : {}), ...(flags.ttl ? { ttl: flags.ttl } : {}) };
      const entry = await cli.withClient(flags, (c) => c.request<RegistrationView>('POST', '/v1/pki/registrations', { body }));
      printRegistration(cli, flags, entry);
    });
}
