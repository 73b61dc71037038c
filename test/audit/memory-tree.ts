import { CompactRange, type Hash } from '../../src/audit/merkle.js';
import { STORED_NODE_MIN_HEIGHT, type TreeReader, nodeKey } from '../../src/audit/tiles.js';

/**
 * An in-memory TreeReader over given leaf hashes, storing interior nodes exactly as integration
 * does (CompactRange.append's completed subtrees of height ≥ STORED_NODE_MIN_HEIGHT). `reads`
 * counts what a proof asked for.
 */
export function memoryTreeReader(leaves: readonly Hash[]): TreeReader & { nodes_: Map<string, Hash>; reads: { leaves: number; nodeQueries: number } } {
  const nodes = new Map<string, Hash>();
  const range = CompactRange.empty();
  for (const l of leaves) {
    range.append(l, (height, index, hash) => {
      if (height >= STORED_NODE_MIN_HEIGHT) nodes.set(nodeKey(height, index), hash);
    });
  }
  const reads = { leaves: 0, nodeQueries: 0 };
  return {
    nodes_: nodes,
    reads,
    async leafHashes(start, end) {
      reads.leaves += end - start;
      return leaves.slice(start, end);
    },
    async nodes(refs) {
      reads.nodeQueries++;
      const out = new Map<string, Hash>();
      for (const r of refs) {
        const h = nodes.get(nodeKey(r.height, r.index));
        if (h) out.set(nodeKey(r.height, r.index), h);
      }
      return out;
    },
    async nodeRange(height, start, end) {
      reads.nodeQueries++;
      const out: Hash[] = [];
      for (let i = start; i < end; i++) {
        const h = nodes.get(nodeKey(height, i));
        if (h) out.push(h);
      }
      return out;
    },
  };
}
