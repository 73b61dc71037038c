import { CompactRange, type Hash, leafHashOfText } from './merkle.js';
import type { AuditStore, Integration, PendingEntry, TreeNodeRow, TreeState } from './store.js';
import { STORED_NODE_MIN_HEIGHT } from './tiles.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * What integrating `pending` (in insertion order) into the tree of `state` stores: each row's
 * leaf index and hash, SHA-256(0x00 ‖ payload) (RFC 6962 §2.1), the interior nodes the rows
 * complete, and the new tree state. The state is the compact range of all leaves so far, so a
 * batch costs O(batch · log n). A pure function of its arguments, so the thread that integrates
 * (./log.ts or the store's own, src/store/sqlite-audit-thread.ts) makes no difference to the tree.
 */
export function integrationOf(state: TreeState | undefined, pending: readonly PendingEntry[], at: string): Integration {
  const range = state ? CompactRange.fromJSON(JSON.parse(state.frontier)) : CompactRange.empty();
  const nodes: TreeNodeRow[] = [];
  const keep = (height: number, index: number, hash: Hash): void => {
    if (height >= STORED_NODE_MIN_HEIGHT) nodes.push({ height, index, hash: hex(hash) });
  };
  const entries = pending.map((p) => {
    const h = leafHashOfText(p.payload);
    const leafIndex = range.size;
    range.append(h, keep);
    return { id: p.id, leafIndex, leafHash: hex(h) };
  });
  return {
    entries,
    nodes,
    tree: { size: range.size, frontier: JSON.stringify(range.toJSON()), rootHash: hex(range.root()) },
    at,
  };
}

/** Integrates up to `limit` pending rows of `store` in one of its transactions; returns how many. */
export async function integratePendingIn(store: Pick<AuditStore, 'integratePending'>, limit: number, at: string): Promise<number> {
  const result = await store.integratePending(limit, (state, pending) => integrationOf(state, pending, at));
  return result?.entries.length ?? 0;
}
