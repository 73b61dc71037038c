/** `rampart ca rotate` and `rampart ca activate`: zero-downtime CA rotation (docs/pki.md, "Rotation"). */
import { type Command, Option } from 'commander';
import { activateCa, rotateCa } from '../../sdk/ca.js';
import type { Cli, ClientFlags } from '../main.js';
import { printCaStatus } from './ca-status.js';

interface CaRotateFlags extends ClientFlags {
  intermediate?: boolean;
  root?: boolean;
  propagationDelay?: string;
}

/**
 * Adds `rotate [--intermediate | --root] [--propagation-delay <duration>]` and `activate` under
 * the `ca` group.
 *
 * @example
 * ```ts
 * registerCaRotate(caGroup, cli); // rampart ca rotate --root --propagation-delay 1h
 * ```
 */
export function registerCaRotate(ca: Command, cli: Cli): void {
  cli
    .clientCommand(ca, 'rotate', 'Publish a new intermediate (or a new cross-signed root with --root); it signs after the propagation delay (operator)')
    .addOption(new Option('--intermediate', 'rotate the intermediate (the default)').conflicts('root'))
    .addOption(new Option('--root', 'rotate the root: a new root cross-signed by the current one, and an intermediate under it'))
    .addOption(new Option('--propagation-delay <duration>', 'how long the new CA is only published before it signs (default 10m; 0s: at once)'))
    .action(async (flags: CaRotateFlags) => {
      const status = await cli.withClient(flags, (client) =>
        rotateCa(client, { target: flags.root ? 'root' : 'intermediate', ...(flags.propagationDelay === undefined ? {} : { propagationDelay: flags.propagationDelay }) }),
      );
      printCaStatus(cli, flags, status);
    });
  cli
    .clientCommand(ca, 'activate', 'Let the prepared intermediate sign now instead of at the end of its propagation delay (operator)')
    .action(async (flags: ClientFlags) => printCaStatus(cli, flags, await cli.withClient(flags, (client) => activateCa(client))));
}
