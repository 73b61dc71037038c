import type { Command } from 'commander';
import { RAMPART_POLICY_STORE } from '../../authz/entities.js';

/** `--store S`, shared by the policy commands; the tenant's own `rampart` store by default. */
export function withStoreOption(command: Command): Command {
  return command.option('--store <name>', 'policy store', RAMPART_POLICY_STORE);
}

export interface StoreFlags {
  store: string;
}
