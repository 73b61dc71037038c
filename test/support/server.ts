import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ManualClock } from '../../src/core/clock.js';
import { resolveServerConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import { buildApp } from '../../src/server/app.js';
import type { TestDatabase } from './databases.js';

export interface TestServer {
  readonly runtime: Runtime;
  readonly app: FastifyInstance;
  readonly clock: ManualClock;
  readonly dataDir: string;
  /** The bootstrap admin token of tenant `default`. */
  readonly adminToken: string;
  /** `https://127.0.0.1:<port>` when started with `listen: true`. */
  readonly addr: string | undefined;
  close(): Promise<void>;
}

/**
 * A complete control plane for `app.inject()` tests: real store, real Cedar, real audit log, a
 * fresh data directory, and a manual clock (tests advance it instead of sleeping). Background
 * audit integration is off; call `runtime.audit.integrateAll()` where a test needs leaf indexes.
 */
export async function startTestServer(
  options: { database?: TestDatabase; clock?: ManualClock; bodyLimit?: number; listen?: boolean; auditMaxPending?: number; auditRetention?: string; configFile?: string } = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-test-'));
  const created = options.database ? await options.database.create() : { url: undefined, drop: async () => undefined };
  const clock = options.clock ?? new ManualClock(Date.now());
  const config = resolveServerConfig(
    { config: options.configFile, dataDir, databaseUrl: created.url, bodyLimit: options.bodyLimit === undefined ? undefined : String(options.bodyLimit), logLevel: 'silent', auditRetention: options.auditRetention },
    {},
  );
  const runtime = await startRuntime(config, {
    clock,
    logger: createLogger({ level: 'silent' }),
    integrateEveryMs: 0,
    pruneEveryMs: 0,
    ...(options.auditMaxPending === undefined ? {} : { auditMaxPending: options.auditMaxPending }),
  });
  const app = await buildApp(
    runtime,
    options.listen
      ? { https: { key: runtime.tls.keyPem, cert: runtime.tls.certPem, ca: runtime.trustBundlePem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' } }
      : {},
  );
  let addr: string | undefined;
  if (options.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    addr = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  } else {
    await app.ready();
  }
  return {
    runtime,
    app,
    clock,
    dataDir,
    adminToken: readFileSync(runtime.files.adminToken, 'utf8').trim(),
    addr,
    async close() {
      await app.close();
      await runtime.close();
      await created.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
