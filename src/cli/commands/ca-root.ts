/** `rampart ca root export|remove|import`: keeping the root key offline (docs/pki.md, "Root offline"). */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { exportRootKey, importRootKey, removeRootKey } from '../../sdk/ca.js';
import type { Cli, ClientFlags } from '../main.js';

interface PassphraseFlags extends ClientFlags {
  passphraseFile?: string;
}

/**
 * The passphrase from `--passphrase-file` or `RAMPART_CA_PASSPHRASE`, never from a flag value:
 * command lines are visible to every user of the host (`ps`).
 */
async function passphrase(flags: PassphraseFlags): Promise<string> {
  if (flags.passphraseFile !== undefined) return (await readFile(flags.passphraseFile, 'utf8')).replace(/\r?\n$/, '');
  const fromEnv = process.env.RAMPART_CA_PASSPHRASE;
  if (fromEnv) return fromEnv;
  throw new Error('Pass --passphrase-file <path> or set RAMPART_CA_PASSPHRASE');
}

/**
 * Adds `root export --out <file>`, `root remove --root-id <id>` and `root import --in <file>`
 * under the `ca` group.
 *
 * @example
 * ```ts
 * registerCaRoot(caGroup, cli); // rampart ca root export --out root.p8.enc --passphrase-file pass.txt
 * ```
 */
export function registerCaRoot(ca: Command, cli: Cli): void {
  const root = ca.command('root').description('Take the root key offline and back');
  cli
    .clientCommand(root, 'export', 'Write the root key, encrypted (PKCS #8, AES-256-CBC), to a file (operator)')
    .requiredOption('--out <file>', 'where to write the encrypted key (created with mode 0600, never overwritten)')
    .option('--cert-out <file>', "also write the root's certificate (for signing an intermediate offline with openssl)")
    .option('--passphrase-file <path>', 'file holding the passphrase, at least 16 characters (or RAMPART_CA_PASSPHRASE)')
    .action(async (flags: PassphraseFlags & { out: string; certOut?: string }) => {
      const secret = await passphrase(flags);
      const exported = await cli.withClient(flags, (client) => exportRootKey(client, secret));
      await writeFile(flags.out, exported.encrypted_key, { mode: 0o600, flag: 'wx' });
      if (flags.certOut !== undefined) await writeFile(flags.certOut, exported.certificate);
      if (flags.format === 'json') return cli.out.json({ root_id: exported.root_id, out: flags.out });
      cli.out.fields([
        ['root_id', exported.root_id],
        ['written', flags.out],
      ]);
      cli.out.note(`keep ${flags.out} and its passphrase offline, then: rampart ca root remove --root-id ${exported.root_id}`);
    });
  cli
    .clientCommand(root, 'remove', 'Delete the root key from the server; only the intermediate stays online (operator)')
    .requiredOption('--root-id <id>', 'the root_id that `ca root export` printed (confirms the export was kept)')
    .action(async (flags: ClientFlags & { rootId: string }) => {
      const r = await cli.withClient(flags, (client) => removeRootKey(client, flags.rootId));
      if (flags.format === 'json') return cli.out.json(r);
      cli.out.fields([
        ['root_id', r.root_id],
        ['key_online', String(r.key_online)],
      ]);
    });
  cli
    .clientCommand(root, 'import', 'Bring an exported root key back online, e.g. for a rotation (operator)')
    .requiredOption('--in <file>', 'the file `ca root export` wrote')
    .option('--passphrase-file <path>', 'file holding the passphrase (or RAMPART_CA_PASSPHRASE)')
    .action(async (flags: PassphraseFlags & { in: string }) => {
      const encrypted = await readFile(flags.in, 'utf8');
      const secret = await passphrase(flags);
      const r = await cli.withClient(flags, (client) => importRootKey(client, encrypted, secret));
      if (flags.format === 'json') return cli.out.json(r);
      cli.out.fields([
        ['root_id', r.root_id],
        ['key_online', String(r.key_online)],
      ]);
    });
}
