/**
 * When to replace an SVID: at half its lifetime, less a random share of up to a tenth of it, so
 * that agents started together (a fleet rollout) do not all renew in the same second. SPIRE
 * rotates at half-life too; the early-only jitter keeps the renewal before the half-life, never after.
 */
export const ROTATION_JITTER = 0.1;

export function rotationTime(notBefore: Date, notAfter: Date, random: () => number = Math.random): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  const share = 0.5 - ROTATION_JITTER * Math.min(Math.max(random(), 0), 1);
  return new Date(notBefore.getTime() + Math.floor(life * share));
}
