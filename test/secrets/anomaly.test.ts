import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import {
  AnomalyDetector,
  type AnomalyFinding,
  LEARNING_MS,
  SPIKE_MIN_READS,
  isSecretRead,
  pathPrefix,
} from '../../src/secrets/anomaly.js';

const MINUTE = 60_000;
const START = Date.UTC(2026, 0, 1, 0, 0, 0);
const PREFIXES = ['secret/data', 'transit/decrypt', 'database/creds'];

/** A principal that reads one secret every `everyMin` minutes for a day, cycling over PREFIXES. */
function trained(everyMin = 10, principal = 'Rampart::Token::app'): { d: AnomalyDetector; clock: ManualClock; findings: AnomalyFinding[] } {
  const clock = new ManualClock(START);
  const d = new AnomalyDetector({ clock });
  const findings: AnomalyFinding[] = [];
  for (let i = 0; i * everyMin * MINUTE <= LEARNING_MS; i++) {
    findings.push(...d.observe({ tenant: 't', principal, path: `${PREFIXES[i % PREFIXES.length]}/app/${i}` }));
    clock.advance(everyMin * MINUTE);
  }
  return { d, clock, findings };
}

const kinds = (fs: readonly AnomalyFinding[]) => fs.map((f) => f.kind);

describe('AnomalyDetector', () => {
  it('flags nothing during the learning period, however odd the reads', () => {
    const clock = new ManualClock(START);
    const d = new AnomalyDetector({ clock });
    for (let i = 0; i < 200; i++) expect(d.observe({ tenant: 't', principal: 'p', path: `m${i}/x/y` })).toEqual([]);
    clock.advance(LEARNING_MS - MINUTE);
    expect(d.observe({ tenant: 't', principal: 'p', path: 'brand/new/path' })).toEqual([]);
  });

  it('does not flag steady traffic inside its baseline', () => {
    const { d, clock, findings } = trained();
    expect(findings).toEqual([]);
    for (let i = 0; i < 24 * 6 * 2; i++) {
      expect(d.observe({ tenant: 't', principal: 'Rampart::Token::app', path: `${PREFIXES[i % 3]}/other/${i}` })).toEqual([]);
      clock.advance(10 * MINUTE);
    }
  });

  it('flags a read under a prefix never seen, once', () => {
    const { d } = trained();
    const [f, ...rest] = d.observe({ tenant: 't', principal: 'Rampart::Token::app', path: 'secret/metadata/app' });
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ kind: 'new_prefix', prefix: 'secret/metadata', path: 'secret/metadata/app', principal: 'Rampart::Token::app', tenant: 't' });
    expect(f!.baseline.baseline_prefixes).toBe(3);
    expect(d.observe({ tenant: 't', principal: 'Rampart::Token::app', path: 'secret/metadata/other' })).toEqual([]);
  });

  it('flags a volume spike once per minute, and only above the absolute floor', () => {
    const { d } = trained();
    const read = () => d.observe({ tenant: 't', principal: 'Rampart::Token::app', path: 'secret/data/app' });
    for (let i = 0; i < SPIKE_MIN_READS; i++) expect(read()).toEqual([]);
    const spike = read();
    expect(kinds(spike)).toEqual(['volume_spike']);
    expect(spike[0]!.baseline.reads_this_minute).toBe(SPIKE_MIN_READS + 1);
    expect(spike[0]!.baseline.baseline_rate_per_minute).toBeLessThan(1);
    for (let i = 0; i < 100; i++) expect(read()).toEqual([]);
  });

  it('does not flag a busy principal for its usual volume', () => {
    const clock = new ManualClock(START);
    const d = new AnomalyDetector({ clock });
    // 50 reads a minute for a day: far above the floor, but that is its baseline.
    for (let m = 0; m <= 24 * 60 + 30; m++) {
      for (let i = 0; i < 50; i++) expect(d.observe({ tenant: 't', principal: 'busy', path: 'secret/data/x' })).toEqual([]);
      clock.advance(MINUTE);
    }
  });

  it('flags a read at an hour with no baseline mass', () => {
    // Office hours only: 09:00–17:00 UTC on three days.
    const clock = new ManualClock(START);
    const d = new AnomalyDetector({ clock });
    for (let day = 0; day < 3; day++) {
      for (let m = 9 * 60; m < 17 * 60; m += 15) {
        clock.set(new Date(START + day * LEARNING_MS + m * MINUTE));
        expect(d.observe({ tenant: 't', principal: 'p', path: 'secret/data/x' })).toEqual([]);
      }
    }
    clock.set(new Date(START + 3 * LEARNING_MS + 3 * 60 * MINUTE));
    const [f] = d.observe({ tenant: 't', principal: 'p', path: 'secret/data/x' });
    expect(f).toMatchObject({ kind: 'unusual_hour', baseline: { hour_utc: 3, baseline_hour_share: 0 } });
    // One finding per hour, not one per read.
    clock.advance(MINUTE);
    expect(d.observe({ tenant: 't', principal: 'p', path: 'secret/data/x' })).toEqual([]);
    clock.set(new Date(START + 3 * LEARNING_MS + 10 * 60 * MINUTE));
    expect(d.observe({ tenant: 't', principal: 'p', path: 'secret/data/x' })).toEqual([]);
  });

  it('keeps baselines per tenant and principal', () => {
    const { d } = trained(10, 'a');
    expect(d.observe({ tenant: 'other', principal: 'a', path: 'new/prefix/x' })).toEqual([]);
    expect(d.observe({ tenant: 't', principal: 'b', path: 'new/prefix/x' })).toEqual([]);
    expect(kinds(d.observe({ tenant: 't', principal: 'a', path: 'new/prefix/x' }))).toEqual(['new_prefix']);
  });

  it('is deterministic: the same reads give the same findings', () => {
    const run = () => {
      const { d, clock } = trained();
      const out: AnomalyFinding[] = [];
      clock.set(new Date(START + LEARNING_MS + 60 * MINUTE));
      for (let i = 0; i < 60; i++) out.push(...d.observe({ tenant: 't', principal: 'Rampart::Token::app', path: `x${i % 4}/y/z` }));
      return out;
    };
    const a = run();
    expect(a.length).toBeGreaterThan(0);
    expect(run()).toEqual(a);
  });

  it('bounds memory: least recently seen principals and prefixes are forgotten', () => {
    const clock = new ManualClock(START);
    const d = new AnomalyDetector({ clock, maxPrincipals: 3, maxPrefixes: 2 });
    for (const p of ['a', 'b', 'c']) d.observe({ tenant: 't', principal: p, path: 'k/v/1' });
    d.observe({ tenant: 't', principal: 'a', path: 'k/v/1' });
    d.observe({ tenant: 't', principal: 'd', path: 'k/v/1' });
    expect(d.size).toBe(3);
    expect(d.prefixesOf('t', 'b')).toEqual([]);
    expect(d.prefixesOf('t', 'a')).toEqual(['k/v']);
    for (const m of ['m1', 'm2', 'm3', 'm2']) d.observe({ tenant: 't', principal: 'a', path: `${m}/x` });
    expect(d.prefixesOf('t', 'a')).toEqual(['m3/x', 'm2/x']);
    for (let i = 0; i < 5000; i++) d.observe({ tenant: 't', principal: `p${i}`, path: `m${i}/x` });
    expect(d.size).toBe(3);
  });

  it('never flags reads inside the baseline (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ prefix: fc.constantFrom(...PREFIXES), gapMin: fc.integer({ min: 1, max: 180 }), leaf: fc.string() }), { maxLength: 200 }), (reads) => {
        const { d, clock } = trained(5);
        for (const r of reads) {
          clock.advance(r.gapMin * MINUTE);
          if (d.observe({ tenant: 't', principal: 'Rampart::Token::app', path: `${r.prefix}/${r.leaf}` }).length > 0) return false;
        }
        return true;
      }),
    );
  });
});

describe('pathPrefix and isSecretRead', () => {
  it('takes the first two segments', () => {
    expect(pathPrefix('secret/data/app/db')).toBe('secret/data');
    expect(pathPrefix('/transit//decrypt/k')).toBe('transit/decrypt');
    expect(pathPrefix('one')).toBe('one');
  });

  it('equals the first two non-empty segments joined by a slash, for any path', () => {
    const segment = fc.constantFrom('', 'a', 'secret', 'data', 'é', ' ');
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }).map((s) => s.join('/')), (path) => {
        expect(pathPrefix(path)).toBe(path.split('/').filter((s) => s !== '').slice(0, 2).join('/'));
      }),
    );
  });

  it('files a read under the UTC hour of the clock, whatever the instant', () => {
    const DAY = 24 * 60 * MINUTE;
    fc.assert(
      fc.property(fc.integer({ min: -400 * DAY, max: 200 * 365 * DAY }), (ms) => {
        const clock = new ManualClock(ms);
        const d = new AnomalyDetector({ clock });
        const read = { tenant: 't', principal: 'p', path: 'secret/data/x' };
        // A read a day for 25 days, all in the UTC hour of `ms`: learned, and every other hour unusual.
        for (let day = 0; day < 25; day++) {
          clock.set(new Date(ms + day * DAY));
          expect(d.observe(read)).toEqual([]);
        }
        const later = ms + 25 * DAY + 60 * MINUTE;
        clock.set(new Date(later));
        expect(d.observe(read)).toMatchObject([{ kind: 'unusual_hour', baseline: { hour_utc: new Date(later).getUTCHours() } }]);
      }),
      { numRuns: 50 },
    );
  });

  it('picks the requests that hand out secret material', () => {
    expect(isSecretRead('kv', 'GET', 'data/app')).toBe(true);
    expect(isSecretRead('kv', 'GET', 'metadata/app')).toBe(false);
    expect(isSecretRead('kv', 'PUT', 'data/app')).toBe(false);
    expect(isSecretRead('transit', 'POST', 'decrypt/k')).toBe(true);
    expect(isSecretRead('transit', 'POST', 'encrypt/k')).toBe(false);
    expect(isSecretRead('database', 'GET', 'creds/r')).toBe(true);
    expect(isSecretRead('database', 'GET', 'static-creds/r')).toBe(true);
    expect(isSecretRead('database', 'GET', 'roles/r')).toBe(false);
    expect(isSecretRead('', 'GET', 'data/x')).toBe(false);
  });
});
