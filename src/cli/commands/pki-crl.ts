/** `rampart pki crl`: downloads the issuing CA's CRL (PEM). The CRL is public; no token is needed. */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

interface PkiCrlFlags extends ClientFlags {
  out?: string;
}

/**
 * Adds `crl [--out <file>]` under the `pki` group; without `--out` the PEM goes to stdout.
 *
 * @example
 * ```ts
 * registerPkiCrl(pkiGroup, cli); // rampart pki crl --out crl.pem
 * ```
 */
export function registerPkiCrl(pki: Command, cli: Cli): void {
  cli
    .clientCommand(pki, 'crl', 'Download the current CRL (PEM)')
    .option('--out <file>', 'write the CRL here instead of stdout')
    .action(async (flags: PkiCrlFlags) => {
      const pem = await cli.withClient(flags, (client) => client.crlPem());
      if (flags.out === undefined) return cli.out.line(pem.trimEnd());
      await writeFile(flags.out, pem);
      if (flags.format === 'text') cli.out.note(`Wrote the CRL to ${flags.out}`);
    });
}
