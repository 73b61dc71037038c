/**
 * JSON Merge Patch, RFC 7396 §2: objects merge recursively, `null` removes a member, anything
 * else (arrays included) replaces. A patch that is not an object replaces the target whole.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete result[name];
    // defineProperty, not assignment: a member named "__proto__" stays data, never a prototype.
    else Object.defineProperty(result, name, { value: mergePatch(Object.hasOwn(result, name) ? result[name] : undefined, value), enumerable: true, writable: true, configurable: true });
  }
  return result;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
