import type { ServerResponse } from 'node:http';

/**
 * Ends a server-sent event stream and resolves once its terminating chunk has been written (or
 * the connection is gone). Shutdown must wait for this: `server.close()` destroys idle keep-alive
 * connections, and a connection whose stream has just been ended is idle, so destroying it before
 * the last chunk is flushed would show the client an aborted response instead of an ended one.
 */
export function endStream(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    if (res.writableFinished || res.destroyed) return resolve();
    res.once('finish', () => resolve());
    res.once('close', () => resolve());
    res.end();
  });
}
