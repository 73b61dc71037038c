import { type ServerFlags, resolveServerConfig, redactUrl } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { VERSION } from '../core/version.js';
import { startRuntime } from '../runtime.js';
import { buildApp } from './app.js';

/**
 * `rampart server`: resolves the configuration, initializes or reopens the data directory and
 * the store, and serves HTTPS until SIGTERM or SIGINT.
 *
 * TLS 1.3 only. Client certificates are requested but optional at the TLS layer: a missing or
 * foreign certificate is answered by the authentication hook with a problem+json and an audit
 * event, which a handshake failure could not carry.
 */
export async function runServer(flags: ServerFlags): Promise<void> {
  const config = resolveServerConfig(flags);
  const logger = createLogger({ level: config.logLevel });
  const runtime = await startRuntime(config, { logger });
  const app = await buildApp(runtime, {
    https: {
      key: runtime.tls.keyPem,
      cert: runtime.tls.certPem,
      ca: runtime.trustBundlePem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    },
  });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  const addr = `https://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${port}`;
  logger.info(
    {
      version: VERSION,
      addr,
      store: runtime.database.dialect,
      database: config.databaseUrl ? redactUrl(config.databaseUrl) : `${config.dataDir}/rampart.db`,
      trust_bundle: runtime.files.trustBundle,
      admin_token_file: runtime.files.adminToken,
      server_certificate: runtime.files.serverCert,
    },
    'rampart server ready',
  );
  process.stderr.write(
    [
      '',
      `Rampart ${VERSION} listening on ${addr} (store: ${runtime.database.dialect})`,
      `  trust bundle:  ${runtime.files.trustBundle}`,
      `  admin token:   ${runtime.files.adminToken}  (mode 0600)`,
      `  unseal key:    ${runtime.files.unsealKey}  (auto-unseal, for development)`,
      `  try:  curl --cacert ${runtime.files.trustBundle} ${addr}/v1/health`,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    // close() stops accepting, waits for in-flight requests, then the runtime flushes the audit
    // queue, integrates it and closes the store.
    app
      .close()
      .then(() => runtime.close())
      .then(() => {
        logger.info('shutdown complete');
        process.exitCode = 0;
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exitCode = 1;
      });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
