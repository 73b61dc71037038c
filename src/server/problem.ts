import type { FastifyError } from 'fastify';
import { ERROR_CODES, type ErrorCode, isRampartError } from '../core/errors.js';

/** RFC 9457 problem details, with Rampart's stable `code` extension member. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ErrorCode;
  readonly request_id: string;
  readonly errors?: readonly { readonly path: string; readonly message: string }[];
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export function problem(code: ErrorCode, detail: string, requestId: string, extra: Pick<Problem, 'errors'> = {}): Problem {
  const info = ERROR_CODES[code];
  return { type: `urn:rampart:problem:${code}`, title: info.title, status: info.status, detail, code, request_id: requestId, ...extra };
}

const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'request.body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'request.unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'request.invalid',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request.malformed_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'request.malformed_json',
};

/**
 * Maps any thrown error to a problem. Only RampartErrors and the framework's request errors
 * keep their message; anything else becomes `server.internal` with a generic detail, so no
 * internal message, secret or stack trace ever reaches a caller.
 */
export function problemFor(err: unknown, requestId: string): Problem {
  if (isRampartError(err)) return problem(err.code, err.message, requestId);
  const fe = err as Partial<FastifyError> & { validation?: { instancePath: string; keyword: string; message?: string; params?: Record<string, unknown> }[] };
  if (Array.isArray(fe.validation)) {
    const unknown = fe.validation.find((v) => v.keyword === 'additionalProperties');
    const errors = fe.validation.map((v) => ({
      path: `${fe.validationContext ?? 'body'}${v.instancePath}`,
      message: v.keyword === 'additionalProperties' ? `unknown field "${String(v.params?.additionalProperty)}"` : (v.message ?? 'is invalid'),
    }));
    return problem(unknown ? 'request.unknown_field' : 'request.invalid', errors.map((e) => `${e.path}: ${e.message}`).join('; '), requestId, { errors });
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return problem(mapped, ERROR_CODES[mapped].title, requestId);
  if (err instanceof SyntaxError && fe.statusCode === 400) return problem('request.malformed_json', 'the body is not valid JSON', requestId);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return problem('request.invalid', ERROR_CODES['request.invalid'].title, requestId);
  }
  return problem('server.internal', 'an internal error occurred; the request id identifies it in the server log', requestId);
}
