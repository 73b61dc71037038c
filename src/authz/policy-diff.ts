/**
 * Line diffs between two versions of a policy file or schema, rendered as unified diffs (the
 * format of `diff -u` and git, with `\ No newline at end of file`), so a reviewer reads a policy
 * change the way they read a code change.
 *
 * The edit script is Myers' O(ND) greedy algorithm ("An O(ND) Difference Algorithm and Its
 * Variations", 1986, §2-3), after trimming the common prefix and suffix. Past
 * {@link MAX_EDIT_DISTANCE} edits the middle is reported as replaced whole: still a correct
 * diff, just not a minimal one, and memory stays bounded for files that share nothing.
 */

export type LineEdit = { readonly op: ' ' | '-' | '+'; readonly line: string };

/** Lines of context around each change, as `diff -u`. */
const CONTEXT = 3;
const MAX_EDIT_DISTANCE = 2000;

/** Splits text into lines that keep their `\n`, so that joining them gives the text back. */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** The edit script turning `a` into `b`, line by line. */
export function diffLines(a: readonly string[], b: readonly string[]): LineEdit[] {
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  let suffix = 0;
  while (suffix < a.length - prefix && suffix < b.length - prefix && a[a.length - 1 - suffix] === b[b.length - 1 - suffix]) suffix++;
  const middleA = a.slice(prefix, a.length - suffix);
  const middleB = b.slice(prefix, b.length - suffix);
  const same = (lines: readonly string[]) => lines.map((line): LineEdit => ({ op: ' ', line }));
  return [...same(a.slice(0, prefix)), ...myers(middleA, middleB), ...same(a.slice(a.length - suffix))];
}

function myers(a: readonly string[], b: readonly string[]): LineEdit[] {
  const n = a.length;
  const m = b.length;
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  const offset = max + 1;
  let v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    const next = v.slice();
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      next[offset + k] = x;
      if (x >= n && y >= m) return backtrack(a, b, [...trace.slice(1), next], offset);
    }
    v = next;
  }
  return [...a.map((line): LineEdit => ({ op: '-', line })), ...b.map((line): LineEdit => ({ op: '+', line }))];
}

/** Walks the furthest-reaching paths back from (n, m); `trace[d]` is V after step d. */
function backtrack(a: readonly string[], b: readonly string[], trace: readonly Int32Array[], offset: number): LineEdit[] {
  const edits: LineEdit[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d > 0; d--) {
    const v = trace[d - 1]!;
    const k = x - y;
    const down = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!);
    const prevK = down ? k + 1 : k - 1;
    const prevX = v[offset + prevK]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      edits.push({ op: ' ', line: a[--x]! });
      y--;
    }
    if (down) edits.push({ op: '+', line: b[--y]! });
    else edits.push({ op: '-', line: a[--x]! });
  }
  while (x > 0 && y > 0) {
    edits.push({ op: ' ', line: a[--x]! });
    y--;
  }
  return edits.reverse();
}

/**
 * A unified diff of one file, `""` when the texts are equal. A file that is absent on one side
 * is diffed against nothing, with `/dev/null` as its name there.
 */
export function unifiedDiff(file: string, before: string | undefined, after: string | undefined): string {
  if (before === after) return '';
  const edits = diffLines(splitLines(before ?? ''), splitLines(after ?? ''));
  const out = [`--- ${before === undefined ? '/dev/null' : `a/${file}`}\n`, `+++ ${after === undefined ? '/dev/null' : `b/${file}`}\n`];
  for (const hunk of hunks(edits)) {
    const { aStart, aCount, bStart, bCount } = hunk;
    out.push(`@@ -${range(aStart, aCount)} +${range(bStart, bCount)} @@\n`);
    for (const e of hunk.edits) {
      out.push(`${e.op}${e.line}`);
      if (!e.line.endsWith('\n')) out.push('\n\\ No newline at end of file\n');
    }
  }
  return out.join('');
}

const range = (start: number, count: number) => (count === 1 ? `${start}` : `${count === 0 ? start - 1 : start},${count}`);

interface Hunk {
  readonly aStart: number;
  readonly aCount: number;
  readonly bStart: number;
  readonly bCount: number;
  readonly edits: readonly LineEdit[];
}

function hunks(edits: readonly LineEdit[]): Hunk[] {
  const changed = edits.map((e, i) => (e.op === ' ' ? -1 : i)).filter((i) => i >= 0);
  const out: Hunk[] = [];
  let i = 0;
  while (i < changed.length) {
    let last = changed[i]!;
    let j = i + 1;
    while (j < changed.length && changed[j]! - last <= 2 * CONTEXT) last = changed[j++]!;
    const from = Math.max(0, changed[i]! - CONTEXT);
    const to = Math.min(edits.length, last + CONTEXT + 1);
    const before = edits.slice(0, from);
    const slice = edits.slice(from, to);
    out.push({
      aStart: before.filter((e) => e.op !== '+').length + 1,
      aCount: slice.filter((e) => e.op !== '+').length,
      bStart: before.filter((e) => e.op !== '-').length + 1,
      bCount: slice.filter((e) => e.op !== '-').length,
      edits: slice,
    });
    i = j;
  }
  return out;
}
