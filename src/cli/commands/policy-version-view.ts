import type { PolicyVersion } from '../../sdk/policies.js';
import type { Output } from '../main.js';

/** A version as the policy commands print it in text format. */
export function printVersion(out: Output, v: PolicyVersion): void {
  out.fields([
    ['version', String(v.version)],
    ['status', v.status],
    ['hash', v.hash],
    ['author', v.author],
    ['message', v.message],
    ['created_at', v.created_at],
  ]);
}
