/**
 * `rampart pki sign`: sends a CSR, writes the certificate and its chain. The private key stays
 * wherever the CSR was made; this command never sees it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

interface PkiSignFlags extends ClientFlags {
  csr: string;
  spiffeId?: string;
  ttl?: string;
  out?: string;
  chainOut?: string;
}

/**
 * Adds `sign --csr <file> [--spiffe-id <id>] [--ttl <d>] [--out <file>] [--chain-out <file>]`
 * under the `pki` group. Without `--out` the certificate goes to stdout (text format).
 *
 * @example
 * ```ts
 * registerPkiSign(pkiGroup, cli); // rampart pki sign --csr req.pem --spiffe-id spiffe://default.rampart.local/ns/pay --out svid.pem --chain-out chain.pem
 * ```
 */
export function registerPkiSign(pki: Command, cli: Cli): void {
  cli
    .clientCommand(pki, 'sign', 'Sign a CSR into an X.509-SVID')
    .requiredOption('--csr <file>', 'PEM certificate signing request')
    .option('--spiffe-id <id>', 'SPIFFE ID to issue (may be omitted when the CSR carries it as its URI SAN, or by a workload renewing over mTLS)')
    .option('--ttl <duration>', 'lifetime, e.g. 10m or 1h (default 1h)')
    .option('--out <file>', 'write the certificate here')
    .option('--chain-out <file>', 'write the CA chain (issuing CA first) here')
    .action(async (flags: PkiSignFlags) => {
      let csr: string;
      try {
        csr = await readFile(flags.csr, 'utf8');
      } catch (cause) {
        throw new Error(`Cannot read CSR ${flags.csr}: ${(cause as Error).message}`, { cause });
      }
      const signed = await cli.withClient(flags, (client) => client.signCertificate({ csr, spiffeId: flags.spiffeId, ttl: flags.ttl }));
      if (flags.out !== undefined) await writeFile(flags.out, signed.certificate);
      if (flags.chainOut !== undefined) await writeFile(flags.chainOut, signed.ca_chain.join(''));
      if (flags.format === 'json') return cli.out.json(signed);
      const fields: [string, string][] = [
        ['spiffe_id', signed.spiffe_id],
        ['serial_number', signed.serial_number],
        ['expiration', new Date(signed.expiration * 1000).toISOString()],
      ];
      if (flags.out !== undefined) fields.push(['certificate', flags.out]);
      if (flags.chainOut !== undefined) fields.push(['ca_chain', flags.chainOut]);
      cli.out.fields(fields);
      if (flags.out === undefined) cli.out.line(signed.certificate.trimEnd());
    });
}
