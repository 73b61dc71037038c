import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths pino censors before a line is written. Secrets must never reach a log line: tokens,
 * passwords, keys and the authorization headers that carry them. `test/core/logger.test.ts` checks
 * each path, so extending this list is how a new secret-bearing field is kept out of the logs.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-vault-token"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-vault-token"]',
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'private_key',
  '*.private_key',
  'privateKey',
  '*.privateKey',
  'client_token',
  '*.client_token',
  'database_url',
  '*.database_url',
  'databaseUrl',
  '*.databaseUrl',
] as const;

export const REDACTED = '[REDACTED]';

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'rampart' },
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
