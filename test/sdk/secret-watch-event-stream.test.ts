import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventStreamParser, type StreamEvent } from '../../src/sdk/index.js';

function parse(chunks: readonly string[]): { events: StreamEvent[]; comments: string[] } {
  const events: StreamEvent[] = [];
  const comments: string[] = [];
  const parser = new EventStreamParser((e) => events.push(e), (c) => comments.push(c));
  for (const c of chunks) parser.push(c);
  return { events, comments };
}

/** Splits `text` at the given cut points. */
function split(text: string, cuts: readonly number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const p of points) {
    out.push(text.slice(from, p));
    from = p;
  }
  out.push(text.slice(from));
  return out;
}

describe('EventStreamParser (WHATWG HTML §9.2.6)', () => {
  const stream = ': connected\n\nid: 7\nevent: kv.rotated\ndata: {"version":2}\n\n: heartbeat\n\nevent: resync\ndata: {}\r\n\r\nid: 9\ndata: a\ndata: b\r\r\n';

  it('reads ids, event names, multi-line data and comments, with LF, CRLF and CR line ends', () => {
    expect(parse([stream])).toEqual({
      events: [
        { id: '7', event: 'kv.rotated', data: '{"version":2}' },
        { id: '7', event: 'resync', data: '{}' },
        { id: '9', event: 'message', data: 'a\nb' },
      ],
      comments: ['connected', 'heartbeat'],
    });
  });

  it('gives the same events however the bytes are split into chunks', () => {
    const whole = parse([stream]);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 20 }), (cuts) => {
        expect(parse(split(stream, cuts))).toEqual(whole);
      }),
    );
  });

  it('dispatches nothing for an event without data, or one not yet terminated', () => {
    expect(parse(['event: x\n\n', 'data: pending\n']).events).toEqual([]);
  });
});
