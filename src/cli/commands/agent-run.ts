/**
 * `rampart agent run`: runs the node agent (src/agent/agent.ts) until SIGINT or SIGTERM. It needs
 * no API token: it authenticates with its attestation evidence once and with its SVID after that.
 */
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';

interface RunFlags {
  server: string;
  ca: string;
  joinToken?: string;
  k8sTokenFile?: string;
  dir: string;
  logLevel: string;
}

/**
 * Adds `run --server <url> --ca <file> (--join-token <t> | --k8s-token-file <f>) [--dir <d>]`
 * under the `agent` group.
 *
 * @example
 * ```ts
 * registerAgentRun(agent); // rampart agent run --server https://rampart:8443 --ca ca.pem --join-token rjt.… --dir /var/run/rampart
 * ```
 */
export function registerAgentRun(agent: Command): void {
  agent
    .command('run')
    .description('Run the node agent: attest, then keep SVIDs of this node\'s registration entries on disk and on workload sockets')
    .requiredOption('--server <url>', 'control plane address')
    .requiredOption('--ca <file>', "PEM bundle of the control plane's CA")
    .addOption(new Option('--join-token <token>', 'one-time join token (rampart agent token create)').conflicts('k8sTokenFile').env('RAMPART_JOIN_TOKEN'))
    .addOption(new Option('--k8s-token-file <file>', 'projected service-account token file'))
    .option('--dir <dir>', 'where SVIDs are written, one directory per registration entry', '/var/run/rampart')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (flags: RunFlags) => {
      if (flags.joinToken === undefined && flags.k8sTokenFile === undefined) throw new Error('Pass --join-token or --k8s-token-file (needed for the first attestation)');
      const [{ RampartAgent }, { createLogger }] = await Promise.all([import('../../agent/agent.js'), import('../../core/logger.js')]);
      const logger = createLogger({ level: flags.logLevel });
      const agentProcess = new RampartAgent({
        server: flags.server,
        caPem: await readFile(flags.ca, 'utf8'),
        dir: flags.dir,
        attestation: flags.joinToken !== undefined ? { joinToken: flags.joinToken } : { k8sTokenFile: flags.k8sTokenFile! },
        logger,
      });
      // Listening for signals before starting: one that arrives during start stops the agent once started.
      const signalled = new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await agentProcess.start();
      logger.info({ spiffe_id: agentProcess.spiffeId, entries: agentProcess.entries().length, dir: flags.dir }, 'agent running');
      await signalled;
      await agentProcess.stop();
    });
}
