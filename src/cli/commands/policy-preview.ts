/**
 * `rampart policy preview DIR --store S [--last N]`: what a push of DIR would change, before it
 * is pushed. The server replays the store's last N logged decisions against the candidate and
 * lists every decision that would flip.
 */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';
import { readPolicyDirectory } from './policy-directory.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';

interface PolicyPreviewFlags extends ClientFlags, StoreFlags {
  last?: number;
}

interface PreviewAnswer {
  replayed: number;
  flipped: number;
  flips: {
    decision_id: string;
    time: string;
    request: { principal: { type: string; id: string }; action: { type: string; id: string }; resource: { type: string; id: string } };
    before: { decision: string; policies: string[]; policy_version: number };
    after: { decision: string; policies: string[] };
  }[];
  failed: { decision_id: string; error: string }[];
}

const uid = (u: { type: string; id: string }): string => `${u.type}::${JSON.stringify(u.id)}`;

/**
 * Adds `preview DIR --store S [--last N]` under the `policy` group. Exits 0 whether or not
 * decisions flip: a preview reports, it does not judge.
 *
 * @example
 * ```ts
 * registerPolicyPreview(policyGroup, cli); // rampart policy preview ./policies --store app --last 500
 * ```
 */
export function registerPolicyPreview(policy: Command, cli: Cli): void {
  withStoreOption(cli.clientCommand(policy, 'preview <dir>', 'Replay recent logged decisions against the policies in DIR; list those that would flip'))
    .option('--last <n>', 'logged decisions to replay (default 1000, at most 10000)', cli.positiveInteger)
    .action(async (dir: string, flags: PolicyPreviewFlags) => {
      // Tests and entities.json are not part of a preview: it replays logged requests as they were.
      const { policies, schema } = await readPolicyDirectory(dir);
      const body = { policies, ...(schema === undefined ? {} : { schema }), ...(flags.last === undefined ? {} : { last: flags.last }) };
      const answer = await cli.withClient(flags, (client) =>
        client.request<PreviewAnswer>('POST', `/v1/authz/stores/${encodeURIComponent(flags.store)}/preview`, { body }),
      );
      if (flags.format === 'json') return cli.out.json(answer);
      cli.out.line(`replayed ${answer.replayed} logged decisions of store ${flags.store}: ${answer.flipped} would flip`);
      if (answer.flips.length > 0) {
        cli.out.table(
          ['time', 'principal', 'action', 'resource', 'change', 'candidate policies', 'logged policies'],
          answer.flips.map((f) => [
            f.time,
            uid(f.request.principal),
            uid(f.request.action),
            uid(f.request.resource),
            `${f.before.decision} (v${f.before.policy_version}) -> ${f.after.decision}`,
            f.after.policies.join(',') || '-',
            f.before.policies.join(',') || '-',
          ]),
        );
      }
      for (const f of answer.failed) cli.out.note(`decision ${f.decision_id} cannot be evaluated by the candidate: ${f.error}`);
    });
}
