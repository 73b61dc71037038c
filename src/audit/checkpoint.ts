/**
 * Checkpoints in the C2SP tlog-checkpoint format (https://c2sp.org/tlog-checkpoint): the signed
 * statement "the log named <origin> had <size> entries with RFC 6962 root <hash>". The body is
 * the text of a signed note (./note.ts):
 *
 *   <origin>\n              e.g. rampart.local/audit/5f0c3a9e1b2d4c67
 *   <size>\n                decimal, no leading zeros
 *   <base64(root hash)>\n   standard base64 of the 32-byte RFC 6962 root
 *   [<extension line>\n]*   none are written; parsing keeps them
 */

import { AuditError } from '../core/errors.js';
import { HASH_SIZE, type Hash } from './merkle.js';
import { type NoteSigner, type NoteVerifier, openNote, signNote } from './note.js';

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Hash;
  readonly extensions: readonly string[];
}

function invalid(message: string, details: Record<string, unknown> = {}): AuditError {
  return new AuditError('audit.checkpoint_invalid', message, { details });
}

export function formatCheckpoint(cp: Pick<Checkpoint, 'origin' | 'size' | 'rootHash'> & { extensions?: readonly string[] }): string {
  if (cp.origin === '' || /[\n\u0000-\u001f]/.test(cp.origin)) throw invalid('the checkpoint origin must be one non-empty line');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw invalid('the checkpoint size must be a non-negative integer');
  if (cp.rootHash.length !== HASH_SIZE) throw invalid(`the checkpoint root must be ${HASH_SIZE} bytes`);
  const ext = (cp.extensions ?? []).map((e) => {
    if (e === '' || /[\n\u0000-\u001f]/.test(e)) throw invalid('extension lines must be non-empty single lines');
    return `${e}\n`;
  });
  return `${cp.origin}\n${cp.size}\n${Buffer.from(cp.rootHash).toString('base64')}\n${ext.join('')}`;
}

/** Parses a checkpoint body. Its text comes from the network or the store: everything is checked. */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw invalid('a checkpoint ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw invalid('a checkpoint has at least three lines: origin, size and root hash');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === '') throw invalid('the checkpoint origin is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw invalid('the checkpoint size is not a decimal number without leading zeros', { size: sizeText.slice(0, 40) });
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw invalid('the checkpoint size is too large', { size: sizeText });
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== HASH_SIZE || root.toString('base64') !== rootText) throw invalid('the checkpoint root is not base64 of a 32-byte hash');
  if (extensions.some((e) => e === '')) throw invalid('the checkpoint has an empty extension line');
  return { origin, size, rootHash: new Uint8Array(root), extensions };
}

/** Signs a checkpoint: the note text is the checkpoint body, the key name is the origin. */
export function signCheckpoint(cp: Pick<Checkpoint, 'size' | 'rootHash'>, signer: NoteSigner): string {
  return signNote(formatCheckpoint({ origin: signer.name, size: cp.size, rootHash: cp.rootHash }), signer);
}

/**
 * Verifies a signed checkpoint against the log's verifier key and returns it. The origin must
 * equal the key name: a log's key signs only its own checkpoints (tlog-checkpoint §Signed note).
 * Throws `audit.checkpoint_invalid`.
 */
export function openCheckpoint(note: string, verifier: NoteVerifier): Checkpoint {
  const { text } = openNote(note, verifier);
  const cp = parseCheckpoint(text);
  if (cp.origin !== verifier.name) throw invalid('the checkpoint names another log', { origin: cp.origin, expected: verifier.name });
  return cp;
}
