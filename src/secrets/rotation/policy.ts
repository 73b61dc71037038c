import { SecretsError } from '../../core/errors.js';
import { formatSeconds, optionalDurationSeconds } from '../fields.js';
import type { KvKey } from '../kv/store.js';
import { type GeneratorSpec, parseGeneratorSpec } from './generator.js';
import type { RotationPolicyRecord } from './store.js';

/**
 * A KV secret's rotation policy, set with Rampart's fields on `POST <mount>/metadata/<path>`
 * (Vault has no rotation for KV; its `custom_metadata` stays the user's):
 * `rotation_period`, `rotation_grace_period`, `rotation_generator`.
 */
export interface RotationPolicyChange {
  /** 0 removes the policy. */
  readonly periodSeconds?: number | undefined;
  readonly graceSeconds?: number | undefined;
  /** null removes the generator (an application rotates). */
  readonly generator?: GeneratorSpec | null | undefined;
}

/** As for static database roles, Vault's floor: a shorter period is a configuration mistake. */
export const MIN_ROTATION_PERIOD = 5;
/** Ten years: a longer period is a mistake too (or a unit confusion), and near the date range's end. */
export const MAX_ROTATION_PERIOD = 10 * 365 * 86_400;

function invalid(message: string): SecretsError {
  return new SecretsError('secrets.invalid_request', message);
}

/** Reads the rotation fields of a metadata body; undefined when it names none. Throws before anything is written. */
export function parseRotationChange(body: Readonly<Record<string, unknown>>): RotationPolicyChange | undefined {
  if (body.rotation_period === undefined && body.rotation_grace_period === undefined && body.rotation_generator === undefined) return undefined;
  const periodSeconds = optionalDurationSeconds(body, 'rotation_period');
  const graceSeconds = optionalDurationSeconds(body, 'rotation_grace_period');
  const generator = body.rotation_generator === undefined ? undefined : body.rotation_generator === null ? null : parseGeneratorSpec(body.rotation_generator);
  if (periodSeconds !== undefined && periodSeconds !== 0 && (periodSeconds < MIN_ROTATION_PERIOD || periodSeconds > MAX_ROTATION_PERIOD)) {
    throw invalid(`rotation_period: expected 0 (no rotation) or between ${MIN_ROTATION_PERIOD}s and ${formatSeconds(MAX_ROTATION_PERIOD)}`);
  }
  return { periodSeconds, graceSeconds, generator };
}

/**
 * The policy after `change`, or undefined when it removes the policy (or there is none and the
 * change sets no period). The grace period may not exceed the rotation period: two versions in
 * grace at once would mean credentials outliving two rotations.
 */
export function applyRotationChange(
  key: KvKey,
  mountPath: string,
  existing: RotationPolicyRecord | undefined,
  change: RotationPolicyChange,
  now: Date,
): RotationPolicyRecord | undefined {
  if (change.periodSeconds === 0) return undefined;
  const period = change.periodSeconds ?? existing?.periodSeconds;
  if (period === undefined) throw invalid('rotation_period is required to set rotation_grace_period or rotation_generator');
  const grace = change.graceSeconds ?? existing?.graceSeconds ?? 0;
  if (grace > period) throw invalid('rotation_grace_period may not exceed rotation_period');
  const generator = change.generator === undefined ? (existing?.generator ?? null) : change.generator === null ? null : JSON.stringify(change.generator);
  const rescheduled = !existing || existing.periodSeconds !== period;
  const from = existing?.lastRotatedAt ? Date.parse(existing.lastRotatedAt) : now.getTime();
  // Due and waiting for an application, but now the server can generate: it rotates at its next pass.
  const generateNow = existing?.state === 'due' && generator !== null;
  return {
    ...key,
    mountPath,
    periodSeconds: period,
    graceSeconds: grace,
    generator,
    nextRotationAt: generateNow ? now.toISOString() : rescheduled ? new Date(Math.max(from + period * 1000, now.getTime())).toISOString() : existing.nextRotationAt,
    lastRotatedAt: existing?.lastRotatedAt ?? null,
    state: rescheduled || generateNow ? 'scheduled' : existing.state,
    attempts: existing?.attempts ?? 0,
    lastError: existing?.lastError ?? null,
  };
}

/** The rotation fields of a metadata read; an empty object when the secret has no policy. */
export function rotationView(policy: RotationPolicyRecord | undefined): Record<string, unknown> {
  if (!policy) return {};
  return {
    rotation_period: formatSeconds(policy.periodSeconds),
    rotation_grace_period: formatSeconds(policy.graceSeconds),
    rotation_generator: policy.generator === null ? null : (JSON.parse(policy.generator) as unknown),
    rotation_state: policy.state,
    next_rotation_time: policy.nextRotationAt,
    last_rotation_time: policy.lastRotatedAt ?? '',
    rotation_attempts: policy.attempts,
    rotation_last_error: policy.lastError ?? '',
  };
}
