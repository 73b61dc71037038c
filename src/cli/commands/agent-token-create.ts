/** `rampart agent token create`: a one-time join token for `rampart agent run --join-token`. */
import type { Command } from 'commander';
import type { Cli, ClientFlags } from '../main.js';

interface TokenFlags extends ClientFlags {
  ttl?: string;
  spiffeId?: string;
}

/**
 * Adds `create [--ttl 1h] [--spiffe-id <id>]` under the `agent token` group. The token is printed
 * once; only its hash is stored.
 *
 * @example
 * ```ts
 * registerAgentTokenCreate(agentToken, cli); // rampart agent token create --ttl 10m
 * ```
 */
export function registerAgentTokenCreate(agentToken: Command, cli: Cli): void {
  cli
    .clientCommand(agentToken, 'create', 'Create a one-time join token for node attestation')
    .option('--ttl <duration>', 'how long the token stays usable (default 1h, at most 720h)')
    .option('--spiffe-id <id>', 'the agent SPIFFE ID to grant (default spiffe://<td>/rampart/agent/join_token/<id>)')
    .action(async (flags: TokenFlags) => {
      const body = { ...(flags.ttl ? { ttl: flags.ttl } : {}), ...(flags.spiffeId ? { spiffe_id: flags.spiffeId } : {}) };
      const created = await cli.withClient(flags, (c) => c.request<{ token: string; id: string; spiffe_id: string; expires_at: string }>('POST', '/v1/pki/agent/tokens', { body }));
      if (flags.format === 'json') return cli.out.json(created);
      cli.out.fields([
        ['token', created.token],
        ['id', created.id],
        ['spiffe_id', created.spiffe_id],
        ['expires_at', created.expires_at],
      ]);
    });
}
