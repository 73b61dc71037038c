import type { FastifyRequest } from 'fastify';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from '../../audit/event.js';
import type { Runtime } from '../../runtime.js';
import { isSecretRead } from '../../secrets/anomaly.js';
import type { VaultRequestHead } from './handler.js';

/**
 * Feeds a successful secret read to the anomaly detector (src/secrets/anomaly.ts) and records
 * each finding as its own audit event (`secrets:anomaly`) and in
 * `rampart_secret_access_anomalies_total{kind}`. The detector never refuses a read; but the
 * finding's event is appended like any other, so an audit pushback or write failure answers the
 * request 503 as every audit failure does (fail closed, docs/audit-events.md).
 */
export async function recordSecretRead(runtime: Runtime, req: FastifyRequest, mountType: string, head: VaultRequestHead, status: number): Promise<void> {
  if (status !== 200 || !isSecretRead(mountType, head.method, head.path)) return;
  const p = head.principal;
  const findings = runtime.secretAnomalies.observe({ tenant: head.tenant, principal: `${p.type}::${p.id}`, path: head.fullPath });
  for (const f of findings) {
    const event: AuditEvent = {
      schema_version: AUDIT_SCHEMA_VERSION,
      time: runtime.clock.now().toISOString(),
      tenant: head.tenant,
      request_id: req.id,
      source_ip: head.sourceIp,
      principal: { type: p.type, id: p.id, tenant: p.tenant, auth_method: p.authMethod },
      action: 'secrets:anomaly',
      resource: { type: 'Rampart::VaultPath', id: head.fullPath },
      outcome: 'success',
      authorization: null,
      error_code: null,
      http: { method: req.method, route: req.routeOptions.url ?? '', status },
      details: { kind: f.kind, path: f.path, prefix: f.prefix, principal: f.principal, ...f.baseline },
    };
    await runtime.audit.append(event);
    runtime.metrics.secretAccessAnomalies.inc({ kind: f.kind });
  }
}
