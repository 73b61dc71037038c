/**
 * `rampart server`: runs the control plane in this process. The server module is imported only
 * when this command runs, so client commands never load the server, the store or native drivers.
 */
import type { Command } from 'commander';

interface ServerFlags {
  config?: string;
  dataDir?: string;
  listen?: string;
  databaseUrl?: string;
  bodyLimit?: string;
  advertiseAddr?: string;
  pkiMaxTtl?: string;
  auditRetention?: string;
  auditOrigin?: string;
}

/**
 * Adds `rampart server [--config <file>] [--data-dir <dir>] [--listen <host:port>]
 * [--database-url <url>] [--body-limit <bytes>] [--advertise-addr <url>] [--pki-max-ttl <duration>]
 * [--audit-retention <duration>] [--audit-origin <name>]` to `program`.
 *
 * @example
 * ```ts
 * registerServer(program); // rampart server --data-dir ./data --listen 127.0.0.1:8443
 * ```
 */
export function registerServer(program: Command): void {
  program
    .command('server')
    .description('Run the Rampart control plane server')
    .option('--config <file>', 'configuration file')
    .option('--data-dir <dir>', 'directory for the SQLite database, CA and keys')
    .option('--listen <host:port>', 'address to listen on')
    .option('--database-url <url>', 'PostgreSQL URL (SQLite in the data directory when omitted)')
    .option('--body-limit <bytes>', 'largest accepted request body')
    .option('--advertise-addr <url>', 'externally reachable base URL, put into SVIDs for CRL and OCSP (default https://<listen>)')
    .option('--pki-max-ttl <duration>', 'longest TTL of a signed certificate (default 24h)')
    .option('--audit-retention <duration>', 'prune audit payloads older than this, e.g. 2160h (default none: keep forever)')
    .option('--audit-origin <name>', "the audit log's origin in checkpoints, e.g. rampart.example.com/audit (fixed when the log is created)")
    .action(async (flags: ServerFlags) => {
      const { runServer } = await import('../../server/main.js');
      await runServer({
        config: flags.config,
        dataDir: flags.dataDir,
        listen: flags.listen,
        databaseUrl: flags.databaseUrl,
        bodyLimit: flags.bodyLimit,
        advertiseAddr: flags.advertiseAddr,
        pkiMaxTtl: flags.pkiMaxTtl,
        auditRetention: flags.auditRetention,
        auditOrigin: flags.auditOrigin,
      });
    });
}
