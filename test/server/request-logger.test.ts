import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { REDACTED, createLogger } from '../../src/core/logger.js';
import { LazyRequestLogger } from '../../src/server/request-logger.js';

/**
 * The per-request logger (src/server/request-logger.ts) must write exactly what pino's own child
 * would — the request id bound, secrets redacted — and create no child for lines nobody reads.
 */

function capture(level: string) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level, destination });
  return { logger, lines };
}

describe('LazyRequestLogger', () => {
  it('writes a line with the request id bound and secrets redacted, as a pino child does', () => {
    const { logger, lines } = capture('info');
    const log = LazyRequestLogger.factory(logger, { reqId: 'r-1' }, {});
    log.info({ token: 'rpt.secret', action: 'x' }, 'request denied');
    log.error('plain %s', 'message');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ reqId: 'r-1', service: 'rampart', token: REDACTED, action: 'x', msg: 'request denied', level: 30 });
    expect(lines[1]).toMatchObject({ reqId: 'r-1', msg: 'plain message', level: 50 });
  });

  it('creates no pino child for lines below the level, and writes nothing for them', () => {
    const { logger, lines } = capture('warn');
    const child = vi.spyOn(logger, 'child');
    const log = LazyRequestLogger.factory(logger, { reqId: 'r-2' }, {});
    log.info({ req: { method: 'GET' } }, 'incoming request');
    log.debug('detail');
    log.trace('more detail');
    expect(child).not.toHaveBeenCalled();
    expect(lines).toEqual([]);
    log.warn('something odd');
    expect(child).toHaveBeenCalledTimes(1);
    expect(lines).toEqual([expect.objectContaining({ reqId: 'r-2', msg: 'something odd' })]);
  });

  it('honours a route-level log level given to the factory', () => {
    const { logger, lines } = capture('warn');
    const log = LazyRequestLogger.factory(logger, { reqId: 'r-3' }, { level: 'debug' });
    log.debug('route debug line');
    expect(lines).toEqual([expect.objectContaining({ reqId: 'r-3', msg: 'route debug line' })]);
    expect(log.level).toBe('debug');
  });

  it('hands out real children that keep the request id', () => {
    const { logger, lines } = capture('info');
    const log = LazyRequestLogger.factory(logger, { reqId: 'r-4' }, {});
    log.child({ component: 'vault' }).info('from a child');
    expect(lines).toEqual([expect.objectContaining({ reqId: 'r-4', component: 'vault', msg: 'from a child' })]);
  });
});
