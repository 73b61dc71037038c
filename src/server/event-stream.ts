import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
const HEARTBEAT_MS = 15_000;
/** Bytes written but not yet taken by the client's socket before the stream is cut off. */
const MAX_BUFFERED_BYTES = 1 << 20;

/**
 * One open server-sent event stream (WHATWG HTML §9.2). It is stopped once, whichever comes
 * first: the client goes away, the route ends it, or the server closes.
 */
export class EventStream {
  readonly res: ServerResponse;
  #closed = false;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #onStop: () => void;
  readonly #streams: Set<EventStream>;

  constructor(res: ServerResponse, streams: Set<EventStream>, heartbeat: ((stream: EventStream) => void) | undefined, onStop: () => void) {
    this.res = res;
    this.#streams = streams;
    this.#onStop = onStop;
    streams.add(this);
    this.#heartbeat = setInterval(() => (heartbeat ? heartbeat(this) : this.write(': heartbeat\n\n')), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Writes events or comments; a client that does not read is cut off (it reconnects and resumes) rather than buffered for without bound. */
  write(text: string): void {
    if (this.#closed) return;
    this.res.write(text);
    if (this.res.writableLength > MAX_BUFFERED_BYTES) void this.end();
  }

  /** Releases what the stream holds (heartbeat, subscriptions); the response is left as it is. */
  stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#streams.delete(this);
    this.#onStop();
  }

  /**
   * Stops the stream and ends the response, resolving once its terminating chunk has been written
   * (or the connection is gone). Shutdown must wait for this: `server.close()` destroys idle
   * keep-alive connections, and a connection whose stream has just been ended is idle, so
   * destroying it before the last chunk is flushed would show the client an aborted response
   * instead of an ended one.
   */
  end(): Promise<void> {
    this.stop();
    const res = this.res;
    return new Promise<void>((resolve) => {
      if (res.writableFinished || res.destroyed) return resolve();
      res.once('finish', () => resolve());
      res.once('close', () => resolve());
      res.end();
    });
  }
}

/**
 * The event streams of one route plugin. Streams never end on their own, so they are ended
 * before the server closes, or shutdown would wait on them.
 */
export class EventStreams {
  readonly #open = new Set<EventStream>();
  #closing = false;

  constructor(app: FastifyInstance) {
    app.addHook('preClose', async () => {
      this.#closing = true;
      await Promise.all([...this.#open].map((s) => s.end()));
    });
  }

  /**
   * Takes the response over from Fastify and starts the stream: call after the opening was
   * authorized and audited. `heartbeat` replaces the plain heartbeat comment (a route that
   * re-checks its subscriber then); `onStop` releases what the route subscribed to.
   */
  open(req: FastifyRequest, reply: FastifyReply, options: { heartbeat?: (stream: EventStream) => void; onStop: () => void }): EventStream {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-request-id': req.id,
      // server.close() already closed the idle connections: this one must not stay for keep-alive.
      ...(this.#closing ? { connection: 'close' } : {}),
    });
    const stream = new EventStream(res, this.#open, options.heartbeat, options.onStop);
    req.raw.socket.once('close', () => stream.stop());
    res.once('close', () => stream.stop());
    // A client that left while the opening was authorized and audited closed the socket before
    // anyone listened, and 'close' does not come twice: without this its subscription would stay.
    if (res.destroyed || req.raw.socket.destroyed) stream.stop();
    // Opened after preClose ended the open streams (its opening was being audited): nobody else
    // would end it, and server.close() would wait on it for as long as the client stays.
    else if (this.#closing) void stream.end();
    return stream;
  }
}
