import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequestError } from '../../core/errors.js';
import { problemFor } from '../problem.js';

/**
 * Vault's error shape, `{"errors": ["…"]}`, for every refusal on a Vault path (api-docs, "HTTP
 * status codes"). The stable Rampart code still goes into the audit event; the caller sees
 * Vault's status and message, so Vault clients react as they would to Vault:
 *
 * - any authentication or authorization failure: 403 `permission denied` (Vault does not tell a
 *   bad token from a missing permission, and neither does Rampart on these paths);
 * - a missing secret: 404 with an empty list; a path no handler serves: 404 with Vault's
 *   `no handler for route "…". route entry not found.` ({@link vaultNoRoute});
 * - a sealed barrier: 503 `Vault is sealed`;
 * - internal errors: 500 with a generic message (the request id finds it in the log).
 */
export function vaultErrorBody(err: unknown, requestId: string): { status: number; code: string; errors: string[] } {
  const p = problemFor(err, requestId);
  if (p.code.startsWith('auth.') || p.code.startsWith('authz.')) return { status: 403, code: p.code, errors: ['permission denied'] };
  if (p.code === 'secrets.not_found') return { status: 404, code: p.code, errors: [] };
  if (p.code === 'secrets.sealed') return { status: 503, code: p.code, errors: ['Vault is sealed'] };
  return { status: p.status, code: p.code, errors: [p.detail] };
}

export async function sendVaultError(err: unknown, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { status, code, errors } = vaultErrorBody(err, req.id);
  if (req.rampart) req.rampart.errorCode = code;
  if (status >= 500 && code !== 'secrets.sealed') req.log.error({ err }, 'vault request failed');
  if (code === 'audit.pushback' || code === 'store.pushback') reply.header('retry-after', '1');
  return reply.code(status).header('content-type', 'application/json').send(vaultErrorPayload(errors));
}

export function vaultErrorPayload(errors: readonly string[]): string {
  return JSON.stringify({ errors });
}

/** Vault's answer for a path no mount or built-in tree serves (vault/router.go, ErrUnsupportedPath). */
export function vaultNoRoute(path: string): RequestError {
  return new RequestError('request.not_found', `no handler for route ${JSON.stringify(path)}. route entry not found.`);
}

/**
 * Whether a request is answered in Vault's shapes: every route of the Vault adapter, and a
 * `/v1/…` request no route matched that is clearly a Vault client's: it carries one of the
 * headers only Vault clients send (`X-Vault-Token`, `X-Vault-Request`, which Vault's Go client
 * and CLI set on every request, `X-Vault-Namespace`) and no `Authorization`, which is how
 * Rampart's own clients authenticate. Rampart's own routes keep problem+json whatever headers
 * they are sent, since they are matched.
 */
export function speaksVault(req: FastifyRequest): boolean {
  if (req.routeOptions.config.vault) return true;
  if (!req.is404 || !req.url.startsWith('/v1/') || req.headers.authorization !== undefined) return false;
  const h = req.headers;
  return h['x-vault-token'] !== undefined || h['x-vault-request'] !== undefined || h['x-vault-namespace'] !== undefined;
}

/** Whether a GET is a list: Vault parses `list` as a Go boolean; node-vault's noCustomHTTPVerbs sends `list=1`. */
export function isVaultList(req: FastifyRequest): boolean {
  const list = (req.query as Record<string, unknown> | undefined)?.list;
  return req.method === 'GET' && typeof list === 'string' && ['true', '1', 't', 'T', 'TRUE', 'True'].includes(list);
}

/** The Vault path of a request: below `/v1/`, without the query, with the "/" Vault adds to a list's. */
export function vaultPathOf(req: FastifyRequest): string {
  const path = (req.url.split('?')[0] ?? '').replace(/^\/v1\//, '');
  return isVaultList(req) && !path.endsWith('/') ? `${path}/` : path;
}
