/**
 * How a list of bound CIDR blocks (src/identity/cidr.ts) is stored: a JSON array, or NULL for an
 * empty list, which binds nothing (migration 0028_bound_cidrs).
 */
export function cidrColumn(cidrs: readonly string[] | undefined): string | null {
  return cidrs && cidrs.length > 0 ? JSON.stringify(cidrs) : null;
}

export function cidrsOfColumn(column: string | null): string[] {
  return column === null ? [] : (JSON.parse(column) as string[]);
}
