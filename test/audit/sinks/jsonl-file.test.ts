import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveredEvent } from '../../../src/audit/sink.js';
import { SinkDispatcher } from '../../../src/audit/sink.js';
import { JsonlFileSink } from '../../../src/audit/sinks/jsonl-file.js';
import { ManualClock } from '../../../src/core/clock.js';
import { ManualTimers, MemorySinkStore } from '../../support/audit-sinks.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-jsonl-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const events = (from: number, to: number, note = 'x'): DeliveredEvent[] =>
  Array.from({ length: to - from }, (_, i) => ({ leafIndex: from + i, payload: JSON.stringify({ seq: from + i, note }) }));

/** Every file of the sink, oldest first: `<path>.<keep>` … `<path>.1`, then the live file. */
function filesOldestFirst(path: string): string[] {
  const base = path.split('/').at(-1)!;
  const rotated = readdirSync(dir)
    .filter((f) => f.startsWith(`${base}.`))
    .map((f) => Number(f.slice(base.length + 1)))
    .sort((a, b) => b - a)
    .map((n) => `${path}.${n}`);
  return [...rotated, ...(existsSync(path) ? [path] : [])];
}

function linesOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text.split('\n').slice(0, -1);
}

describe('JsonlFileSink', () => {
  it('writes one line per event: {"leaf_index":N,"event":<payload verbatim>}', async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = new JsonlFileSink({ name: 'file', path, maxBytes: 1 << 20, keep: 3 });
    const payload = '{"b":1,"a":"ünï€😀 \\"q\\"",  "spaced":  true}';
    await sink.deliver([{ leafIndex: 7, payload }]);
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe(`{"leaf_index":7,"event":${payload}}\n`);
    expect(JSON.parse(linesOf(path)[0]!)).toEqual({ leaf_index: 7, event: JSON.parse(payload) });
  });

  it('rotates at the size limit, never splits a line, and keeps every line exactly once across files', async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = new JsonlFileSink({ name: 'file', path, maxBytes: 300, keep: 100 });
    for (let from = 0; from < 60; from += 7) await sink.deliver(events(from, Math.min(from + 7, 60)));
    await sink.close();
    const files = filesOldestFirst(path);
    expect(files.length).toBeGreaterThan(5);
    const lines = files.flatMap(linesOf);
    expect(lines.map((l) => (JSON.parse(l) as { leaf_index: number }).leaf_index)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    for (const f of files) expect(readFileSync(f).length).toBeLessThanOrEqual(300);
  });

  it('keeps only `keep` rotated files, deleting the oldest', async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = new JsonlFileSink({ name: 'file', path, maxBytes: 200, keep: 2 });
    for (let i = 0; i < 40; i++) await sink.deliver(events(i, i + 1));
    await sink.close();
    expect(readdirSync(dir).sort()).toEqual(['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2']);
    const lines = filesOldestFirst(path).flatMap(linesOf);
    const indexes = lines.map((l) => (JSON.parse(l) as { leaf_index: number }).leaf_index);
    // The newest lines survive, contiguous and ending at the last event.
    expect(indexes.at(-1)).toBe(39);
    expect(indexes).toEqual(Array.from({ length: indexes.length }, (_, i) => 40 - indexes.length + i));
  });

  it('appends after a restart and cuts off a partial last line left by a crash', async () => {
    const path = join(dir, 'audit.jsonl');
    const first = new JsonlFileSink({ name: 'file', path, maxBytes: 1 << 20, keep: 3 });
    await first.deliver(events(0, 3));
    await first.close();
    // A crash in the middle of writing leaf 3: half a line, never reported delivered.
    appendFileSync(path, '{"leaf_index":3,"event":{"se');
    const second = new JsonlFileSink({ name: 'file', path, maxBytes: 1 << 20, keep: 3 });
    await second.deliver(events(3, 5));
    await second.close();
    expect(linesOf(path).map((l) => (JSON.parse(l) as { leaf_index: number }).leaf_index)).toEqual([0, 1, 2, 3, 4]);
  });

  it('treats a file with no newline at all as empty', async () => {
    const path = join(dir, 'audit.jsonl');
    writeFileSync(path, 'garbage without newline');
    const sink = new JsonlFileSink({ name: 'file', path, maxBytes: 1 << 20, keep: 1 });
    await sink.deliver(events(0, 1));
    await sink.close();
    expect(linesOf(path)).toHaveLength(1);
  });

  it('fails the batch (to be retried) when the directory is gone, and recovers when it is back', async () => {
    const sub = join(dir, 'sub');
    const path = join(sub, 'audit.jsonl');
    const sink = new JsonlFileSink({ name: 'file', path, maxBytes: 1 << 20, keep: 1 });
    await expect(sink.deliver(events(0, 1))).rejects.toThrow(/ENOENT/);
    (await import('node:fs')).mkdirSync(sub);
    await sink.deliver(events(0, 1));
    await sink.close();
    expect(linesOf(path)).toHaveLength(1);
  });

  it('holds every delivered line exactly once for any batch sizes and size limit (through the dispatcher)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 80 }),
        fc.integer({ min: 1, max: 13 }),
        fc.integer({ min: 60, max: 700 }),
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        async (count, batchSize, maxBytes, note) => {
          const path = join(mkdtempSync(join(dir, 'p-')), 'audit.jsonl');
          const store = new MemorySinkStore();
          for (let i = 0; i < count; i++) store.events.push({ leafIndex: i, payload: JSON.stringify({ seq: i, note }) });
          const dispatcher = new SinkDispatcher({
            store,
            sinks: [new JsonlFileSink({ name: 'file', path, maxBytes, keep: 1000 })],
            clock: new ManualClock(),
            batchSize,
            schedule: new ManualTimers().schedule,
          });
          dispatcher.start();
          await dispatcher.settled();
          await dispatcher.stop();
          const base = path.slice(0, path.lastIndexOf('/'));
          const rotated = readdirSync(base)
            .filter((f) => f !== 'audit.jsonl')
            .map((f) => Number(f.split('.').at(-1)))
            .sort((a, b) => b - a)
            .map((n) => `${path}.${n}`);
          const all = [...rotated, ...(existsSync(path) ? [path] : [])].flatMap(linesOf);
          expect(all).toEqual(store.events.map((e) => `{"leaf_index":${e.leafIndex},"event":${e.payload}}`));
          expect(store.cursors.get('file') ?? 0).toBe(count);
        },
      ),
      // Every batch and rotation fsyncs, so keep the run count modest.
      { numRuns: 15 },
    );
  }, 60_000);
});
