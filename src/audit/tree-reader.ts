import type { Hash } from './merkle.js';
import type { AuditStore } from './store.js';
import { type TreeReader, nodeKey } from './tiles.js';

const fromHex = (h: string): Hash => new Uint8Array(Buffer.from(h, 'hex'));

/** The stored tree (leaf hashes and interior nodes of an {@link AuditStore}) as a {@link TreeReader}. */
export function storeTreeReader(audit: AuditStore): TreeReader {
  return {
    async leafHashes(start, end) {
      return (await audit.leafHashes(start, end)).map(fromHex);
    },
    async nodes(refs) {
      const rows = await audit.treeNodes(refs);
      return new Map(rows.map((r) => [nodeKey(r.height, r.index), fromHex(r.hash)]));
    },
    async nodeRange(height, start, end) {
      return (await audit.treeNodeRange(height, start, end)).map(fromHex);
    },
  };
}
