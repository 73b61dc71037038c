/**
 * One server-sent event (WHATWG HTML §9.2.6): its `id` (undefined when the event set none), its
 * `event` name (`message` by default) and its `data` lines joined with newlines.
 *
 * @example
 * ```ts
 * const e: StreamEvent = { id: '42', event: 'kv.rotated', data: '{"version":3}' };
 * ```
 */
export interface StreamEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/**
 * Incremental parser of a `text/event-stream` body: feed it chunks as they arrive and it calls
 * `onEvent` per complete event and `onComment` per comment line (`: heartbeat`). Lines end with
 * LF, CRLF or CR, as §9.2.6 allows; an event without data lines is not dispatched.
 *
 * @example
 * ```ts
 * const parser = new EventStreamParser((e) => console.log(e.event, e.data));
 * response.setEncoding('utf8').on('data', (chunk: string) => parser.push(chunk));
 * ```
 */
export class EventStreamParser {
  #buffer = '';
  #id: string | undefined;
  #event = '';
  #data: string[] = [];

  constructor(
    private readonly onEvent: (event: StreamEvent) => void,
    private readonly onComment: (text: string) => void = () => undefined,
  ) {}

  push(chunk: string): void {
    this.#buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      // A lone CR at the end may be the first half of CRLF: wait for the next chunk.
      if (!match || (match[0] === '\r' && match.index === this.#buffer.length - 1)) return;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) this.onEvent({ id: this.#id, event: this.#event || 'message', data: this.#data.join('\n') });
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
  }
}
