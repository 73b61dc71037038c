import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rotationTime } from '../../src/agent/rotation.js';
import { ManualScheduler } from '../../src/core/scheduler.js';
import { writeSvidFiles } from '../../src/agent/svid-files.js';
import { ManualClock } from '../../src/core/clock.js';

describe('rotationTime', () => {
  it('falls between 40% and 50% of the lifetime for any lifetime and jitter', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1000, max: 90 * 86_400_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (start, life, r) => {
        const at = rotationTime(new Date(start), new Date(start + life), () => r).getTime() - start;
        expect(at).toBeGreaterThanOrEqual(Math.floor(life * 0.4));
        expect(at).toBeLessThanOrEqual(life * 0.5);
      }),
    );
  });

  it('spreads renewals: different jitter, different times', () => {
    const nb = new Date(0);
    const na = new Date(3_600_000);
    expect(rotationTime(nb, na, () => 0).getTime()).toBe(1_800_000);
    expect(rotationTime(nb, na, () => 0.999).getTime()).toBeLessThan(1_450_000);
  });
});

describe('ManualScheduler', () => {
  it('runs what is due when asked, in order, and nothing early; a task scheduled by a task waits for the next call', async () => {
    const clock = new ManualClock(0);
    const scheduler = new ManualScheduler(clock);
    const ran: string[] = [];
    scheduler.schedule(new Date(20), async () => void ran.push('b'));
    scheduler.schedule(new Date(10), async () => {
      ran.push('a');
      scheduler.schedule(new Date(0), async () => void ran.push('again'));
    });
    const cancel = scheduler.schedule(new Date(15), async () => void ran.push('cancelled'));
    cancel();
    await scheduler.runDue();
    expect(ran).toEqual([]);
    clock.advance(20);
    await scheduler.runDue();
    expect(ran).toEqual(['a', 'b']);
    await scheduler.runDue();
    expect(ran).toEqual(['a', 'b', 'again']);
  });
});

describe('writeSvidFiles', () => {
  it('writes the key 0600 in a 0700 directory and replaces each file by rename, leaving no temporary file', () => {
    const root = mkdtempSync(join(tmpdir(), 'rampart-files-'));
    try {
      const dir = join(root, 'reg_x');
      writeSvidFiles(dir, { svidPem: 'cert-1', keyPem: 'key-1', bundlePem: 'bundle-1' });
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'svid.pem')).mode & 0o777).toBe(0o644);
      const inodes = ['svid.pem', 'key.pem', 'bundle.pem'].map((f) => statSync(join(dir, f)).ino);
      writeSvidFiles(dir, { svidPem: 'cert-2', keyPem: 'key-2', bundlePem: 'bundle-2' });
      expect(['svid.pem', 'key.pem', 'bundle.pem'].map((f) => readFileSync(join(dir, f), 'utf8'))).toEqual(['cert-2', 'key-2', 'bundle-2']);
      ['svid.pem', 'key.pem', 'bundle.pem'].forEach((f, i) => expect(statSync(join(dir, f)).ino).not.toBe(inodes[i]));
      expect(readdirSync(dir).sort()).toEqual(['bundle.pem', 'key.pem', 'svid.pem']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
