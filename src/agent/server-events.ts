import https from 'node:https';
import { EventStreamParser, type StreamEvent } from '../sdk/event-stream.js';

/** One server-sent event (WHATWG HTML §9.2.6), as the SDK's parser hands it over. */
export type ServerSentEvent = StreamEvent;

export interface EventStreamOptions {
  readonly url: URL;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly onEvent: (event: ServerSentEvent) => void;
  /** Called once when the stream ends or fails; the caller decides whether to reconnect. */
  readonly onEnd: (err: Error | undefined) => void;
}

/**
 * Follows a server-sent event stream over mTLS. Returns a function that closes it. Comments
 * (`: heartbeat`) are skipped; `id` is parsed but not sent back, because the agent re-syncs from
 * the API after every reconnect rather than replaying missed events.
 */
export function followEventStream(options: EventStreamOptions): () => void {
  let ended = false;
  const end = (err: Error | undefined) => {
    if (ended) return;
    ended = true;
    options.onEnd(err);
  };
  const req = https.get(options.url, { ca: options.caPem, cert: options.certPem, key: options.keyPem, minVersion: 'TLSv1.3', headers: { accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      end(new Error(`event stream answered HTTP ${res.statusCode}`));
      return;
    }
    res.setEncoding('utf8');
    const parser = new EventStreamParser(options.onEvent);
    res.on('data', (chunk: string) => parser.push(chunk));
    res.on('end', () => end(undefined));
    res.on('error', (err) => end(err));
  });
  req.on('error', (err) => end(err));
  return () => {
    ended = true;
    req.destroy();
  };
}

/** GETs a public text resource (the trust bundle), verifying the server with `caPem`. */
export function fetchText(url: URL, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: caPem, minVersion: 'TLSv1.3' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url.pathname} answered HTTP ${res.statusCode}`))));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}
