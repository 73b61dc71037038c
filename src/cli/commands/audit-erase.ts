/**
 * `rampart audit erase --subject ID`: crypto-shreds a data subject's personal data in the audit
 * log (GDPR Art. 17) without touching the log itself, so every proof stays valid.
 */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

interface AuditEraseFlags extends ClientFlags {
  subject: string;
}

/**
 * Adds `erase --subject <id>` under the `audit` group.
 *
 * @example
 * ```ts
 * registerAuditErase(auditGroup, cli); // rampart audit erase --subject alice@example.com
 * ```
 */
export function registerAuditErase(audit: Command, cli: Cli): void {
  cli
    .clientCommand(audit, 'erase', "Destroy a data subject's keys: its personal data in audit events becomes unreadable")
    .requiredOption('--subject <id>', 'the data subject (for tokens: the display name they were created with)')
    .action(async (flags: AuditEraseFlags) => {
      const result = await cli.withClient(flags, (client) => client.eraseAuditSubject(flags.subject));
      if (flags.format === 'json') return cli.out.json(result);
      cli.out.fields([
        ['subject_ref', result.subject_ref],
        ['keys_destroyed', String(result.keys_destroyed)],
      ]);
    });
}
