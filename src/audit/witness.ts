/**
 * A witness remembers the last checkpoint it verified and, on every run, verifies the log again
 * from the raw material *and* checks that the log still extends that checkpoint. An operator who
 * rewrites history and signs a fresh checkpoint over it passes every check a newcomer can make,
 * but not this one: the remembered root no longer matches the tree recomputed at its size.
 *
 * The state is a small JSON document (`rampart audit witness --state file`); the caller stores it
 * atomically. It pins the verifier key on first use, so a later key change is refused.
 */

import type { Clock } from '../core/clock.js';
import { AuditError } from '../core/errors.js';
import { openCheckpoint } from './checkpoint.js';
import type { NoteVerifier } from './note.js';
import { type LogSource, type VerifyReport, verifyLog } from './verify.js';

export interface WitnessState {
  readonly version: 1;
  readonly verifier_key: string;
  /** The last checkpoint this witness verified, as signed. */
  readonly checkpoint: string;
  readonly size: number;
  readonly verified_at: string;
}

export interface WitnessResult {
  readonly report: VerifyReport;
  /** The state to store: advanced when the run verified, unchanged otherwise. */
  readonly state: WitnessState | undefined;
  readonly advanced: boolean;
}

/** Checks a stored state document; it is untrusted input (a file anyone might have edited). */
export function parseWitnessState(text: string, verifier: NoteVerifier): WitnessState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new AuditError('audit.checkpoint_invalid', 'the witness state is not JSON', { cause });
  }
  const s = value as Partial<WitnessState>;
  if (s === null || typeof s !== 'object' || s.version !== 1 || typeof s.checkpoint !== 'string' || typeof s.verifier_key !== 'string') {
    throw new AuditError('audit.checkpoint_invalid', 'the witness state is not a version 1 state document');
  }
  if (s.verifier_key !== verifier.verifierKey) {
    throw new AuditError('audit.checkpoint_invalid', 'the witness state pins another verifier key', {
      details: { pinned: s.verifier_key, given: verifier.verifierKey },
    });
  }
  // The remembered checkpoint is re-verified: a tampered state file must not become the anchor.
  const cp = openCheckpoint(s.checkpoint, verifier);
  return { version: 1, verifier_key: s.verifier_key, checkpoint: s.checkpoint, size: cp.size, verified_at: String(s.verified_at ?? '') };
}

export async function runWitness(
  source: LogSource,
  options: { verifier: NoteVerifier; state: WitnessState | undefined; clock: Clock },
): Promise<WitnessResult> {
  const { verifier, state } = options;
  const trusted = state ? openCheckpoint(state.checkpoint, verifier) : undefined;
  const report = await verifyLog(source, { verifier, ...(trusted ? { trusted: { size: trusted.size, rootHash: trusted.rootHash } } : {}) });
  if (!report.ok || !report.latest || (state && report.latest.size < state.size)) {
    return { report, state, advanced: false };
  }
  return {
    report,
    advanced: !state || report.latest.size > state.size,
    state: {
      version: 1,
      verifier_key: verifier.verifierKey,
      checkpoint: report.latest.note,
      size: report.latest.size,
      verified_at: options.clock.now().toISOString(),
    },
  };
}
