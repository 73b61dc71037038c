import { describe, expect, it } from 'vitest';
import { serializeEvent } from '../../src/audit/event.js';
import { classifyEvent } from '../../src/audit/ocsf.js';

describe('OCSF classification', () => {
  it.each([
    ['GET', 'success', { category_uid: 6, class_uid: 6003, activity_id: 2, type_uid: 600302, status_id: 1, severity_id: 1 }],
    ['GET', 'denied', { category_uid: 6, class_uid: 6003, activity_id: 2, type_uid: 600302, status_id: 2, severity_id: 3 }],
    ['POST', 'success', { category_uid: 3, class_uid: 3004, activity_id: 1, type_uid: 300401, status_id: 1, severity_id: 1 }],
    ['DELETE', 'failed', { category_uid: 3, class_uid: 3004, activity_id: 4, type_uid: 300404, status_id: 2, severity_id: 3 }],
    ['PUT', 'invalid', { category_uid: 3, class_uid: 3004, activity_id: 3, type_uid: 300403, status_id: 2, severity_id: 1 }],
    ['OPTIONS', 'success', { category_uid: 6, class_uid: 6003, activity_id: 99, type_uid: 600399, status_id: 1, severity_id: 1 }],
    ['POST', 'unauthenticated', { category_uid: 3, class_uid: 3002, activity_id: 1, type_uid: 300201, status_id: 2, severity_id: 3 }],
    [null, 'success', { category_uid: 3, class_uid: 3004, activity_id: 1, type_uid: 300401, status_id: 1, severity_id: 1 }],
  ] as const)('%s %s', (method, outcome, expected) => {
    expect(classifyEvent(method, outcome)).toEqual(expected);
  });

  it('files a detected anomaly as a Detection Finding, whatever request carried it', () => {
    for (const method of ['GET', 'POST']) {
      expect(classifyEvent(method, 'success', 'secrets:anomaly')).toEqual({ category_uid: 2, class_uid: 2004, activity_id: 1, type_uid: 200401, status_id: 1, severity_id: 3 });
    }
    expect(classifyEvent('GET', 'success', 'kv:read').class_uid).toBe(6003);
  });

  it('is part of every serialized event, second after the schema version', () => {
    const json = serializeEvent({
      schema_version: 1,
      time: 't',
      tenant: 'default',
      request_id: 'r',
      source_ip: '127.0.0.1',
      principal: null,
      action: null,
      resource: null,
      outcome: 'unauthenticated',
      authorization: null,
      error_code: 'auth.missing_credentials',
      http: { method: 'GET', route: '/v1/tokens/self', status: 401 },
    });
    expect(Object.keys(JSON.parse(json)).slice(0, 2)).toEqual(['schema_version', 'ocsf']);
    expect(JSON.parse(json).ocsf.class_uid).toBe(3002);
  });
});
