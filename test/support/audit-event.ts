import { AUDIT_SCHEMA_VERSION, type AuditEvent } from '../../src/audit/event.js';

/**
 * An audit event for store, log and sink tests: a plain successful read, with whatever the test
 * cares about given in `fields`.
 */
export function testEvent(seq: number, fields: Partial<AuditEvent> = {}): AuditEvent {
  return {
    schema_version: AUDIT_SCHEMA_VERSION,
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    tenant: 'default',
    request_id: `req-${seq}`,
    source_ip: '192.0.2.1',
    principal: null,
    action: 'tenant:read',
    resource: null,
    outcome: 'success',
    authorization: null,
    error_code: null,
    http: null,
    ...fields,
  };
}
