/**
 * `rampart audit witness --state <file>`: verifies the log online and checks that it still
 * extends the checkpoint this witness verified last time (src/audit/witness.ts). Run it from cron
 * on another host, or from a second Rampart: a log rewritten since the last run fails here even
 * when it carries a fresh, validly signed checkpoint. The state file is replaced atomically and
 * only after a successful run; the first run pins the verifier key.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { NoteVerifier } from '../../audit/note.js';
import { tlogSource } from '../../audit/verify.js';
import { type WitnessState, parseWitnessState, runWitness } from '../../audit/witness.js';
import { systemClock } from '../../core/clock.js';
import type { Cli, ClientFlags } from '../main.js';
import { printReport, readVerifierKey, resolveOnlineKey, tlogFetcher } from './audit-verify.js';

interface AuditWitnessFlags extends ClientFlags {
  state: string;
  key?: string;
}

/**
 * Adds `witness --state <file> [--key k]` under the `audit` group.
 *
 * @example
 * ```ts
 * registerAuditWitness(auditGroup, cli); // rampart audit witness --state /var/lib/witness.json --key ./audit.vkey
 * ```
 */
export function registerAuditWitness(audit: Command, cli: Cli): void {
  cli
    .clientCommand(audit, 'witness', 'Verify the audit log and its consistency with the last checkpoint this witness kept')
    .requiredOption('--state <file>', 'JSON file holding the last verified checkpoint (created on first run)')
    .option('--key <key-or-file>', 'the log verifier key; on later runs it must match the key pinned in the state')
    .action(async (flags: AuditWitnessFlags) => {
      const conn = await cli.connection(flags);
      const fetcher = tlogFetcher(conn);
      try {
        let verifier: NoteVerifier;
        let state: WitnessState | undefined;
        if (existsSync(flags.state)) {
          const text = readFileSync(flags.state, 'utf8');
          const pinned = (JSON.parse(text) as { verifier_key?: unknown }).verifier_key;
          verifier = readVerifierKey(flags.key ?? String(pinned));
          state = parseWitnessState(text, verifier);
        } else {
          verifier = await resolveOnlineKey(cli, fetcher, flags.key);
        }
        const result = await runWitness(tlogSource((path) => fetcher.get(`/v1/audit/tlog/${path}`)), { verifier, state, clock: systemClock });
        printReport(cli, flags, result.report);
        if (result.state && result.state !== state) {
          writeFileSync(`${flags.state}.tmp`, `${JSON.stringify(result.state, null, 2)}\n`, { mode: 0o644 });
          renameSync(`${flags.state}.tmp`, flags.state);
          cli.out.note(`Witnessed size ${result.state.size}${state ? ` (was ${state.size})` : ' (first run: key pinned)'}`);
        }
      } finally {
        fetcher.close();
      }
    });
}
