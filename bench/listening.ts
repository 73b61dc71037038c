import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../src/runtime.js';
import { buildApp } from '../src/server/app.js';

/**
 * The control plane listening on an ephemeral 127.0.0.1 port with the TLS settings `rampart
 * server` uses (TLS 1.3, client certificates requested but checked by the authentication hook),
 * so HTTPS figures measure what a deployment serves.
 */
export async function listenHttps(runtime: Runtime): Promise<{ readonly app: FastifyInstance; readonly base: string }> {
  const app = await buildApp(runtime, {
    https: { key: runtime.tls.keyPem, cert: runtime.tls.certPem, ca: runtime.trustBundlePem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return { app, base: `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}
