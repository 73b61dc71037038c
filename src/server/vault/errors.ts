import type { FastifyReply, FastifyRequest } from 'fastify';
import { problemFor } from '../problem.js';

/**
 * Vault's error shape, `{"errors": ["…"]}`, for every refusal on a Vault path (api-docs, "HTTP
 * status codes"). The stable Rampart code still goes into the audit event; the caller sees
 * Vault's status and message, so Vault clients react as they would to Vault:
 *
 * - any authentication or authorization failure: 403 `permission denied` (Vault does not tell a
 *   bad token from a missing permission, and neither does Rampart on these paths);
 * - a missing secret or path: 404 with an empty list;
 * - a sealed barrier: 503 `Vault is sealed`;
 * - internal errors: 500 with a generic message (the request id finds it in the log).
 */
export function vaultErrorBody(err: unknown, requestId: string): { status: number; code: string; errors: string[] } {
  const p = problemFor(err, requestId);
  if (p.code.startsWith('auth.') || p.code.startsWith('authz.')) return { status: 403, code: p.code, errors: ['permission denied'] };
  if (p.code === 'secrets.not_found' || p.code === 'request.not_found') return { status: 404, code: p.code, errors: [] };
  if (p.code === 'secrets.sealed') return { status: 503, code: p.code, errors: ['Vault is sealed'] };
  return { status: p.status, code: p.code, errors: [p.detail] };
}

export async function sendVaultError(err: unknown, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { status, code, errors } = vaultErrorBody(err, req.id);
  if (req.rampart) req.rampart.errorCode = code;
  if (status >= 500 && code !== 'secrets.sealed') req.log.error({ err }, 'vault request failed');
  if (code === 'audit.pushback') reply.header('retry-after', '1');
  return reply.code(status).header('content-type', 'application/json').send(JSON.stringify({ errors }));
}
