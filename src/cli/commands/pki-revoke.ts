/** `rampart pki revoke`: by serial, or every unexpired certificate of a SPIFFE ID. */
import { type Command, Option } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

interface PkiRevokeFlags extends ClientFlags {
  serial?: string;
  spiffeId?: string;
  reason?: string;
}

const REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'];

/**
 * Adds `revoke (--serial <hex> | --spiffe-id <id>) [--reason <name>]` under the `pki` group.
 *
 * @example
 * ```ts
 * registerPkiRevoke(pkiGroup, cli); // rampart pki revoke --serial 5c22ea92… --reason keyCompromise
 * ```
 */
export function registerPkiRevoke(pki: Command, cli: Cli): void {
  cli
    .clientCommand(pki, 'revoke', 'Revoke a certificate, or all unexpired certificates of a SPIFFE ID')
    .addOption(new Option('--serial <hex>', 'serial number (hex, colons allowed)').conflicts('spiffeId'))
    .addOption(new Option('--spiffe-id <id>', 'revoke every unexpired certificate of this ID'))
    .addOption(new Option('--reason <name>', 'RFC 5280 reason').choices(REASONS))
    .action(async (flags: PkiRevokeFlags) => {
      if (flags.serial === undefined && flags.spiffeId === undefined) throw new Error('Pass --serial or --spiffe-id');
      const result = await cli.withClient(flags, (client) =>
        client.revokeCertificate({ serialNumber: flags.serial, spiffeId: flags.spiffeId, reason: flags.reason }),
      );
      if (flags.format === 'json') return cli.out.json(result);
      cli.out.fields([
        ['serial_numbers', result.serial_numbers.join(', ')],
        ['newly_revoked', result.newly_revoked.join(', ') || 'none (already revoked)'],
        ['revocation_time', result.revocation_time_rfc3339],
      ]);
    });
}
