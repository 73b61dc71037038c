import { type TSchema, Type } from '@sinclair/typebox';

/** The problem+json body every error answers with (RFC 9457). */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    request_id: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details with a stable `code`' },
);

/**
 * Paging query parameters. They arrive as strings (validation does not coerce types), so they
 * are matched by pattern and converted by {@link pageOf}.
 */
export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$', description: 'page size, 1-999 (default 100)' })),
    cursor: Type.Optional(Type.String({ maxLength: 256, description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);

export function pageOf(query: { limit?: string; cursor?: string }): { limit: number; cursor: string | undefined } {
  return { limit: query.limit === undefined ? 100 : Number(query.limit), cursor: query.cursor };
}

export const page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });

/** A problem response, declared with its real media type so the OpenAPI document says so. */
export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemSchema } },
});

/** Error responses every authenticated route can give. */
export const errorResponses = {
  400: problemResponse('invalid request'),
  401: problemResponse('not authenticated'),
  403: problemResponse('denied by policy'),
  404: problemResponse('no such route, tenant or record'),
  503: problemResponse('the store or the audit log is unavailable; nothing was done'),
};

/** Policy store names: lower-case, as Amazon Verified Permissions ids are opaque and short. */
export const POLICY_STORE_NAME = '^[a-z0-9][a-z0-9_-]{0,63}$';
export const PolicyStoreParams = Type.Object({ store: Type.String({ pattern: POLICY_STORE_NAME }) });
