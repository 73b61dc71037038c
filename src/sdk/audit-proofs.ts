/**
 * Proving that an audit event is in the log, from the client side: the answers of the proof API
 * (docs/audit.md#proofs-for-the-sdk-and-cli) and {@link verifyEventInclusion}, which checks an
 * event against a checkpoint signed by a key the caller pinned. The cryptography is the server's
 * own verification code (src/audit/merkle.ts, checkpoint.ts, note.ts), run on this side with
 * nothing taken on trust from the server but bytes to check.
 */
import { openCheckpoint } from '../audit/checkpoint.js';
import { type Hash, leafHash, verifyConsistency, verifyInclusion } from '../audit/merkle.js';
import { parseVerifierKey } from '../audit/note.js';
import { AuditError } from '../core/errors.js';
import type { AuditEvent, RampartClient } from './client.js';

/**
 * Answer of `GET /v1/audit/proof/inclusion`: hashes in base64, the proof leaf level first.
 *
 * @example
 * ```ts
 * const p: InclusionProof = await client.auditInclusionProof(42);
 * console.log(p.size, p.proof.length);
 * ```
 */
export interface InclusionProof {
  readonly index: number;
  readonly size: number;
  readonly leaf_hash: string;
  readonly proof: readonly string[];
  /** The signed checkpoint of `size` when one was signed at exactly that size, else null. */
  readonly checkpoint: string | null;
}

/**
 * Answer of `GET /v1/audit/proof/consistency`.
 *
 * @example
 * ```ts
 * const p: ConsistencyProof = await client.auditConsistencyProof(100);
 * ```
 */
export interface ConsistencyProof {
  readonly from: number;
  readonly size: number;
  readonly proof: readonly string[];
  readonly checkpoint: string | null;
}

/**
 * What {@link verifyEventInclusion} checks.
 *
 * @example
 * ```ts
 * const check: EventInclusionCheck = { leafIndex: 7, entry: JSON.stringify(item.event), verifierKey: pinnedKey };
 * ```
 */
export interface EventInclusionCheck {
  /** The event's leaf index (`leaf_index` of an events page). */
  readonly leafIndex: number;
  /**
   * The entry exactly as the log hashed it. For an event listed by `listAuditEvents` without a
   * `subject` section, `JSON.stringify(item.event)` reproduces it byte for byte; an event whose
   * subject section the server opened for you is no longer the entry, and is refused.
   */
  readonly entry: string | Uint8Array | AuditEvent;
  /** The log's verifier key (`<origin>+<id>+<base64>`), obtained out of band — not from this server. */
  readonly verifierKey: string;
  /** A checkpoint verified earlier (a witness's state): the new one must extend it. */
  readonly previous?: { readonly size: number; readonly rootHash: string };
}

/**
 * The checkpoint an event was proven against.
 *
 * @example
 * ```ts
 * const { size, rootHash } = await client.verifyAuditInclusion(check); // keep it as `previous`
 * ```
 */
export interface VerifiedInclusion {
  readonly size: number;
  /** Base64 RFC 6962 root of the checkpoint. */
  readonly rootHash: string;
  /** The signed checkpoint note, as evidence. */
  readonly checkpoint: string;
}

const fromB64 = (s: string): Hash => new Uint8Array(Buffer.from(s, 'base64'));
const b64 = (h: Hash): string => Buffer.from(h).toString('base64');

function entryBytes(entry: EventInclusionCheck['entry']): Uint8Array {
  if (typeof entry === 'string') return new TextEncoder().encode(entry);
  if (entry instanceof Uint8Array) return entry;
  const subject = entry.subject as Record<string, unknown> | undefined;
  if (subject !== undefined && (typeof subject !== 'object' || subject === null || !('key_id' in subject))) {
    throw new AuditError('audit.proof_invalid', 'this event was listed with its subject section opened, so it is not the logged entry; pass the entry bytes instead', {
      details: { field: 'subject' },
    });
  }
  return new TextEncoder().encode(JSON.stringify(entry));
}

/**
 * Proves that `entry` is leaf `leafIndex` of the log: fetches the latest checkpoint, verifies its
 * signature under `verifierKey` (and, with `previous`, that it extends that older checkpoint),
 * then fetches an inclusion proof for exactly that size and checks it against the signed root
 * (RFC 9162 §2.1.3.2). The server is trusted for nothing: a wrong key, a forged checkpoint, a
 * rewritten history or an altered event all throw.
 *
 * @throws {AuditError} `audit.checkpoint_invalid` (signature, origin), `audit.proof_invalid`
 *   (the event is not in the log as given, or the log does not extend `previous`),
 *   `audit.range_invalid` (index not in the signed tree).
 * @example
 * ```ts
 * const item = (await client.listAuditEvents({ limit: 1 })).items[0]!;
 * const verified = await verifyEventInclusion(client, { leafIndex: item.leaf_index!, entry: JSON.stringify(item.event), verifierKey: pinned });
 * ```
 */
export async function verifyEventInclusion(client: RampartClient, check: EventInclusionCheck): Promise<VerifiedInclusion> {
  const verifier = parseVerifierKey(check.verifierKey);
  const note = await client.auditCheckpoint();
  const cp = openCheckpoint(note, verifier);
  if (check.previous) {
    const { size, rootHash } = check.previous;
    if (size > cp.size) {
      throw new AuditError('audit.proof_invalid', `the log's checkpoint of ${cp.size} entries is smaller than the ${size} verified earlier: entries were removed`, {
        details: { previous: check.previous, current: { size: cp.size, root_hash: b64(cp.rootHash) } },
      });
    }
    const consistency = size === cp.size ? [] : (await client.auditConsistencyProof(size, cp.size)).proof.map(fromB64);
    verifyConsistency(size, cp.size, consistency, fromB64(rootHash), cp.rootHash);
  }
  if (!Number.isSafeInteger(check.leafIndex) || check.leafIndex < 0 || check.leafIndex >= cp.size) {
    throw new AuditError('audit.range_invalid', `leaf ${check.leafIndex} is not covered by the latest checkpoint (size ${cp.size})`, {
      details: { index: check.leafIndex, size: cp.size },
    });
  }
  const answer = await client.auditInclusionProof(check.leafIndex, cp.size);
  verifyInclusion(check.leafIndex, cp.size, leafHash(entryBytes(check.entry)), answer.proof.map(fromB64), cp.rootHash);
  return { size: cp.size, rootHash: b64(cp.rootHash), checkpoint: note };
}
