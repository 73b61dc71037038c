/** `rampart ca intermediate csr|set-signed`: rotation with a root held outside the server (docs/pki.md, "Root offline"). */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { requestIntermediateCsr, setSignedIntermediate } from '../../sdk/ca.js';
import type { Cli, ClientFlags } from '../main.js';
import { printCaStatus } from './ca-status.js';

/**
 * Adds `intermediate csr --out <file>` and `intermediate set-signed <cert.pem> [--root <root.pem>]
 * [--propagation-delay <d>]` under the `ca` group.
 *
 * @example
 * ```ts
 * registerCaIntermediate(caGroup, cli); // rampart ca intermediate csr --out next.csr
 * ```
 */
export function registerCaIntermediate(ca: Command, cli: Cli): void {
  const intermediate = ca.command('intermediate').description('Have the next intermediate signed by a root outside the server');
  cli
    .clientCommand(intermediate, 'csr', "Create the next intermediate's key on the server and write its CSR (operator)")
    .requiredOption('--out <file>', 'where to write the PEM CSR')
    .action(async (flags: ClientFlags & { out: string }) => {
      const r = await cli.withClient(flags, (client) => requestIntermediateCsr(client));
      await writeFile(flags.out, r.csr);
      if (flags.format === 'json') return cli.out.json({ id: r.id, out: flags.out });
      cli.out.fields([
        ['id', r.id],
        ['written', flags.out],
      ]);
      cli.out.note(`sign it as a CA (CA:TRUE, keyCertSign, cRLSign), then: rampart ca intermediate set-signed <cert.pem>`);
    });
  cli
    .clientCommand(intermediate, 'set-signed <certificate>', 'Install the signed intermediate; it signs after the propagation delay (operator)')
    .option('--root <file>', 'PEM of the signing root, when the server does not know it yet')
    .option('--propagation-delay <duration>', 'default 10m; 0s: at once')
    .action(async (certificate: string, flags: ClientFlags & { root?: string; propagationDelay?: string }) => {
      const request = {
        certificate: await readFile(certificate, 'utf8'),
        ...(flags.root === undefined ? {} : { root: await readFile(flags.root, 'utf8') }),
        ...(flags.propagationDelay === undefined ? {} : { propagationDelay: flags.propagationDelay }),
      };
      printCaStatus(cli, flags, await cli.withClient(flags, (client) => setSignedIntermediate(client, request)));
    });
}
