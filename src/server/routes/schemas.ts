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

/** Error responses every authenticated route can give. */
export const errorResponses = {
  400: ProblemSchema,
  401: ProblemSchema,
  403: ProblemSchema,
  404: ProblemSchema,
  503: ProblemSchema,
};
