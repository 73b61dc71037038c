/**
 * How the policy commands show a rejected version: every reason on its own line (stderr), before
 * main reports the error and exits with 2.
 */
import { RampartApiError } from '../../sdk/client.js';
import type { Output } from '../main.js';

export async function showingRejection<T>(out: Output, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const errors = err instanceof RampartApiError ? err.problem?.errors : undefined;
    if (Array.isArray(errors)) {
      const version = err instanceof RampartApiError ? err.problem?.version : undefined;
      if (typeof version === 'number') out.note(`Version ${version} was stored as rejected:`);
      for (const e of errors as { path?: unknown; message?: unknown }[]) {
        out.note(`  ${typeof e.path === 'string' && e.path !== '' ? `${e.path}: ` : ''}${String(e.message)}`);
      }
    }
    throw err;
  }
}
