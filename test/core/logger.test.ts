import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { REDACTED, REDACT_PATHS, createLogger } from '../../src/core/logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

const SECRET = 'rpt.AAAAAAAAAAAAAAAAAAAAAA.s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s';

/** Builds an object with SECRET at a pino redaction path such as `req.headers["x-vault-token"]`. */
function objectAt(path: string): Record<string, unknown> {
  const parts = path.replace(/\["([^"]+)"\]/g, '.$1').split('.');
  const root: Record<string, unknown> = {};
  let node = root;
  for (const [i, part] of parts.entries()) {
    const key = part === '*' ? 'anything' : part;
    if (i === parts.length - 1) node[key] = SECRET;
    else {
      const child: Record<string, unknown> = {};
      node[key] = child;
      node = child;
    }
  }
  return root;
}

describe('logger redaction', () => {
  it.each(REDACT_PATHS)('censors %s', (path) => {
    const { logger, lines } = capture();
    logger.info(objectAt(path), 'event');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('s3cr3t');
    expect(lines[0]).toContain(REDACTED);
  });

  it('censors the credentials of a logged request', () => {
    const { logger, lines } = capture();
    logger.info({ req: { method: 'GET', url: '/v1/tokens/self', headers: { authorization: `Bearer ${SECRET}`, 'x-vault-token': SECRET, host: 'h' } } }, 'request');
    expect(lines[0]).not.toContain('s3cr3t');
    expect(JSON.parse(lines[0]!).req.headers.host).toBe('h');
  });

  it('keeps fields that are not secret', () => {
    const { logger, lines } = capture();
    logger.info({ accessor: 'abc', tenant: 'acme' }, 'lookup');
    const line = JSON.parse(lines[0]!);
    expect(line.accessor).toBe('abc');
    expect(line.tenant).toBe('acme');
  });
});
