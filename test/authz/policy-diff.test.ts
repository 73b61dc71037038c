import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffLines, splitLines, unifiedDiff } from '../../src/authz/policy-diff.js';

/**
 * Applies a unified diff as `patch` would, strictly: every context and removed line must match
 * the source at the position the hunk header names.
 */
function applyUnifiedDiff(source: string, diff: string): string {
  const src = splitLines(source);
  const lines = splitLines(diff);
  const out: string[] = [];
  let at = 0;
  let i = 2; // past the ---/+++ header
  while (i < lines.length) {
    const header = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@\n$/.exec(lines[i]!);
    if (!header) throw new Error(`bad hunk header ${JSON.stringify(lines[i])}`);
    const start = Number(header[1]) - (header[2] === '0' ? 0 : 1);
    while (at < start) out.push(src[at++]!);
    i++;
    while (i < lines.length && !lines[i]!.startsWith('@@ ')) {
      let line = lines[i]!.slice(1);
      const op = lines[i]![0];
      if (lines[i + 1] === '\\ No newline at end of file\n') {
        line = line.slice(0, -1);
        i++;
      }
      if (op === ' ' || op === '-') {
        if (src[at] !== line) throw new Error(`context mismatch at line ${at + 1}`);
        at++;
      }
      if (op === ' ' || op === '+') out.push(line);
      i++;
    }
  }
  while (at < src.length) out.push(src[at++]!);
  return out.join('');
}

/** Texts over a small alphabet of lines, so that random pairs share lines and diffs are interesting. */
const text = fc
  .array(fc.constantFrom('permit (principal, action, resource);', 'forbid (principal, action, resource);', '', '@id("a")', 'when { true };', 'ü'), { maxLength: 30 })
  .chain((lines) => fc.boolean().map((trailing) => (lines.length === 0 ? '' : lines.join('\n') + (trailing ? '\n' : ''))));

describe('policy diff', () => {
  it('reproduces the target when the unified diff is applied to the source', () => {
    fc.assert(
      fc.property(text, text, (a, b) => {
        const diff = unifiedDiff('f.cedar', a, b);
        if (a === b) return diff === '';
        return applyUnifiedDiff(a, diff) === b;
      }),
      { numRuns: 500 },
    );
  });

  it('finds a shortest edit script: its length is |a| + |b| - 2·LCS', () => {
    const lcs = (a: string[], b: string[]) => {
      const t = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
      for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) t[i]![j] = a[i - 1] === b[j - 1] ? t[i - 1]![j - 1]! + 1 : Math.max(t[i - 1]![j]!, t[i]![j - 1]!);
      return t[a.length]![b.length]!;
    };
    fc.assert(
      fc.property(text, text, (a, b) => {
        const [la, lb] = [splitLines(a), splitLines(b)];
        const changes = diffLines(la, lb).filter((e) => e.op !== ' ').length;
        return changes === la.length + lb.length - 2 * lcs(la, lb);
      }),
      { numRuns: 300 },
    );
  });

  it('writes unified diffs as diff -u does, including a missing final newline and new files', () => {
    expect(unifiedDiff('x.cedar', 'a\nb\nc\n', 'a\nB\nc')).toBe('--- a/x.cedar\n+++ b/x.cedar\n@@ -1,3 +1,3 @@\n a\n-b\n-c\n+B\n+c\n\\ No newline at end of file\n');
    expect(unifiedDiff('y.cedar', undefined, 'new\n')).toBe('--- /dev/null\n+++ b/y.cedar\n@@ -0,0 +1 @@\n+new\n');
    expect(unifiedDiff('z', 'same\n', 'same\n')).toBe('');
  });

  it('stays correct when two large files share nothing', () => {
    const a = Array.from({ length: 3000 }, (_, i) => `a${i}\n`).join('');
    const b = Array.from({ length: 3000 }, (_, i) => `b${i}\n`).join('');
    expect(applyUnifiedDiff(a, unifiedDiff('big', a, b))).toBe(b);
  });
});
