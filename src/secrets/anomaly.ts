import type { Clock } from '../core/clock.js';

/**
 * Anomaly detection on secret reads (issue 6, "Barrier, leases and rotation"): a baseline per
 * (tenant, principal) of which path prefixes it reads, how many reads per minute and at which
 * UTC hours; a read far outside it is a finding. Pure and deterministic: the only inputs are the
 * reads and the injected clock, so the same sequence always yields the same findings.
 *
 * Baselines live in memory, per replica (docs/secrets.md, "Anomaly detection"): a restart or a
 * replica that has not seen a principal starts it in its learning period again.
 */
export type AnomalyKind = 'new_prefix' | 'volume_spike' | 'unusual_hour';

/**
 * Reads a principal must have made, and time since its first read, before anything is flagged.
 * Both: the read count gives the rate and prefixes a sample, a full day gives every hour of the
 * day a chance to be seen (a nightly batch job must not be flagged on its first night).
 */
export const LEARNING_READS = 20;
export const LEARNING_MS = 24 * 60 * 60 * 1000;

/** A read-rate spike is a minute with more than this many times the baseline rate… */
export const SPIKE_FACTOR = 10;
/** …and more than this many reads: a principal idle most of the time must not be flagged for a small burst. */
export const SPIKE_MIN_READS = 30;
/**
 * Smoothing of the per-minute read-rate EWMA; 1/60 weighs roughly the last hour, so a slow ramp
 * is learned while a one-minute burst stands out.
 */
export const RATE_ALPHA = 1 / 60;

/**
 * An hour of day (UTC) is unusual when less than this share of the principal's reads fell in it;
 * evenly spread traffic puts ~4.2% in each hour, so 1% is "(near) zero mass".
 */
export const UNUSUAL_HOUR_SHARE = 0.01;
/** Hour counts are halved when their total reaches this, so old habits fade and numbers stay bounded. */
export const HOUR_COUNT_CAP = 100_000;

/** Principals tracked; the least recently seen is forgotten (it learns again if it comes back). */
export const MAX_PRINCIPALS = 10_000;
/** Prefixes remembered per principal; the least recently read is forgotten first. */
export const MAX_PREFIXES = 256;

const MINUTE_MS = 60_000;

export interface SecretRead {
  readonly tenant: string;
  /** A stable principal reference (`type::id`); never a secret. */
  readonly principal: string;
  /** The Vault path read, e.g. `secret/data/app/db`. */
  readonly path: string;
}

/** What the baseline looked like when the read was flagged: numbers only, no secret values. */
export interface BaselineSummary {
  readonly baseline_reads: number;
  readonly baseline_prefixes: number;
  readonly baseline_rate_per_minute: number;
  readonly reads_this_minute: number;
  readonly hour_utc: number;
  readonly baseline_hour_share: number;
}

export interface AnomalyFinding {
  readonly kind: AnomalyKind;
  readonly tenant: string;
  readonly principal: string;
  readonly path: string;
  readonly prefix: string;
  readonly baseline: BaselineSummary;
}

interface Baseline {
  readonly firstSeenMs: number;
  reads: number;
  /** Insertion order is recency: a re-read prefix moves to the end. */
  readonly prefixes: Map<string, true>;
  /** The prefix at the end of `prefixes`, which a read of it need not move. */
  newestPrefix: string | undefined;
  minute: number;
  minuteReads: number;
  rate: number;
  /** The minute a spike was last flagged, so a burst is one finding, not one per read. */
  spikeFlaggedMinute: number;
  readonly hours: number[];
  hoursTotal: number;
  /** The epoch hour an unusual-hour finding was last made, for the same reason. */
  hourFlagged: number;
}

/** The first two segments of a path: the mount and the engine's operation (`secret/data`, `transit/decrypt`). */
export function pathPrefix(path: string): string {
  let prefix = '';
  let segments = 0;
  let at = 0;
  while (segments < 2 && at < path.length) {
    let end = path.indexOf('/', at);
    if (end === -1) end = path.length;
    if (end > at) {
      prefix = segments === 0 ? path.slice(at, end) : `${prefix}/${path.slice(at, end)}`;
      segments++;
    }
    at = end + 1;
  }
  return prefix;
}

const HOUR_MS = 60 * 60_000;

const round = (n: number): number => Math.round(n * 1000) / 1000;

export class AnomalyDetector {
  readonly #clock: Clock;
  readonly #maxPrincipals: number;
  readonly #maxPrefixes: number;
  readonly #baselines = new Map<string, Baseline>();
  /** The key at the end of `#baselines` (most recently seen), which a read by it need not move. */
  #newestKey: string | undefined;

  constructor(options: { clock: Clock; maxPrincipals?: number; maxPrefixes?: number }) {
    this.#clock = options.clock;
    this.#maxPrincipals = options.maxPrincipals ?? MAX_PRINCIPALS;
    this.#maxPrefixes = options.maxPrefixes ?? MAX_PREFIXES;
  }

  /** Principals currently tracked (for tests of the memory bound). */
  get size(): number {
    return this.#baselines.size;
  }

  /** Prefixes remembered for a principal, least recently read first. */
  prefixesOf(tenant: string, principal: string): readonly string[] {
    return [...(this.#baselines.get(keyOf(tenant, principal))?.prefixes.keys() ?? [])];
  }

  /**
   * Judges one successful read against the principal's baseline as it was before the read, then
   * adds the read to the baseline. Returns the findings (empty for an ordinary read).
   */
  observe(read: SecretRead): AnomalyFinding[] {
    const nowMs = this.#clock.now().getTime();
    const b = this.#baselineOf(read, nowMs);
    const minute = Math.floor(nowMs / MINUTE_MS);
    this.#rollMinute(b, minute);
    const prefix = pathPrefix(read.path);
    const epochHour = Math.floor(nowMs / HOUR_MS);
    const hour = ((epochHour % 24) + 24) % 24;
    const learning = b.reads < LEARNING_READS || nowMs - b.firstSeenMs < LEARNING_MS;

    const kinds: AnomalyKind[] = [];
    const readsThisMinute = b.minuteReads + 1;
    const hourShare = b.hoursTotal === 0 ? 0 : b.hours[hour]! / b.hoursTotal;
    if (!learning) {
      if (!b.prefixes.has(prefix)) kinds.push('new_prefix');
      if (readsThisMinute > SPIKE_MIN_READS && readsThisMinute > SPIKE_FACTOR * b.rate && b.spikeFlaggedMinute !== minute) {
        b.spikeFlaggedMinute = minute;
        kinds.push('volume_spike');
      }
      if (hourShare < UNUSUAL_HOUR_SHARE && b.hourFlagged !== epochHour) {
        b.hourFlagged = epochHour;
        kinds.push('unusual_hour');
      }
    }
    // Read before the read is added; built only for a finding (the common read has none).
    const baseline: BaselineSummary | undefined =
      kinds.length === 0
        ? undefined
        : {
            baseline_reads: b.reads,
            baseline_prefixes: b.prefixes.size,
            baseline_rate_per_minute: round(b.rate),
            reads_this_minute: readsThisMinute,
            hour_utc: hour,
            baseline_hour_share: round(hourShare),
          };

    b.reads += 1;
    b.minuteReads = readsThisMinute;
    if (b.newestPrefix !== prefix) {
      b.prefixes.delete(prefix);
      b.prefixes.set(prefix, true);
      b.newestPrefix = prefix;
      if (b.prefixes.size > this.#maxPrefixes) b.prefixes.delete(b.prefixes.keys().next().value!);
    }
    b.hours[hour]! += 1;
    b.hoursTotal += 1;
    if (b.hoursTotal >= HOUR_COUNT_CAP) {
      for (let h = 0; h < 24; h++) b.hours[h] = Math.floor(b.hours[h]! / 2);
      b.hoursTotal = b.hours.reduce((a, c) => a + c, 0);
    }
    return baseline === undefined ? [] : kinds.map((kind) => ({ kind, tenant: read.tenant, principal: read.principal, path: read.path, prefix, baseline }));
  }

  #baselineOf(read: SecretRead, nowMs: number): Baseline {
    const key = keyOf(read.tenant, read.principal);
    let b = this.#baselines.get(key);
    if (b && key === this.#newestKey) return b;
    if (b) {
      this.#baselines.delete(key);
    } else {
      b = {
        firstSeenMs: nowMs,
        reads: 0,
        prefixes: new Map(),
        newestPrefix: undefined,
        minute: Math.floor(nowMs / MINUTE_MS),
        minuteReads: 0,
        rate: 0,
        spikeFlaggedMinute: -1,
        hours: new Array<number>(24).fill(0),
        hoursTotal: 0,
        hourFlagged: -1,
      };
    }
    this.#baselines.set(key, b);
    this.#newestKey = key;
    if (this.#baselines.size > this.#maxPrincipals) this.#baselines.delete(this.#baselines.keys().next().value!);
    return b;
  }

  /** Folds finished minutes into the EWMA: the last active minute, then each idle minute as zero. */
  #rollMinute(b: Baseline, minute: number): void {
    if (minute <= b.minute) return;
    b.rate = b.rate + RATE_ALPHA * (b.minuteReads - b.rate);
    const idle = Math.min(minute - b.minute - 1, 100_000);
    b.rate *= Math.pow(1 - RATE_ALPHA, idle);
    b.minute = minute;
    b.minuteReads = 0;
  }
}

function keyOf(tenant: string, principal: string): string {
  return `${tenant}\u0000${principal}`;
}

/**
 * Whether a successful request hands out secret material, the reads the detector watches: KV
 * secret reads (v2 `data/…`, or any non-config path of v1), transit `decrypt/…`, database
 * `creds/…` and `static-creds/…`.
 */
export function isSecretRead(mountType: string, method: string, path: string): boolean {
  const slash = path.indexOf('/');
  const first = slash === -1 ? path : path.slice(0, slash);
  switch (mountType) {
    case 'kv':
      return method === 'GET' && first !== 'metadata' && first !== 'config' && path !== '';
    case 'transit':
      return (method === 'POST' || method === 'PUT') && first === 'decrypt';
    case 'database':
      return method === 'GET' && (first === 'creds' || first === 'static-creds');
    default:
      return false;
  }
}
