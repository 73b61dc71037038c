import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RampartApiError, RampartClient, createAuthorizer } from '../../src/sdk/index.js';
import { makeCsr } from '../support/pki.js';
import { activateVersion } from '../support/policy-versions.js';
import { type TestServer, startTestServer } from '../support/server.js';

const bob = { type: 'User', id: 'bob' };
const doc = { type: 'Doc', id: 'd1' };
const read = { type: 'Action', id: 'read' };

/** The SDK's local authorizer against a real HTTPS server: same decisions, and it follows pushes. */
describe('createAuthorizer', () => {
  let s: TestServer;
  let client: RampartClient;

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    client = new RampartClient({ addr: s.addr!, token: s.adminToken, caPem: s.runtime.trustBundlePem });
    await activateVersion(s, 'default', 'app', { 'app.cedar': '@id("readers")\npermit (principal in Group::"readers", action == Action::"read", resource);' });
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await s?.close();
  });

  it('decides locally as the server does, and picks up a pushed version and new entities', async () => {
    const updates: number[] = [];
    const authorizer = await createAuthorizer({ client, store: 'app', waitSeconds: 30, onUpdate: (v) => updates.push(v) });
    try {
      expect(authorizer.version).toBe(1);
      const inline = { principal: bob, action: read, resource: doc, entities: [{ uid: bob, attrs: {}, parents: [{ type: 'Group', id: 'readers' }] }] };
      const local = await authorizer.authorize(inline);
      const remote = (await client.request<Record<string, unknown>>('POST', '/v1/authz/stores/app/check', { body: inline }));
      expect(local).toMatchObject({ decision: 'allow', reasons: ['readers'], policyVersion: 1 });
      expect(remote).toMatchObject({ decision: local.decision, reasons: local.reasons, policy_version: local.policyVersion });
      expect(await authorizer.authorize({ principal: bob, action: read, resource: doc })).toMatchObject({ decision: 'deny', denyKind: 'no_permit', policyVersion: 1 });

      // Pushed through the API, as an operator would: the SDK must follow what the server acknowledged.
      const push = async (text: string) =>
        (await client.request<{ version: number }>('PUT', '/v1/authz/stores/app/policies', { body: { policies: { 'app.cedar': text }, message: 'sdk test' } })).version;
      const v2 = await push('@id("nobody")\nforbid (principal, action, resource);');
      await authorizer.waitForVersion(v2);
      expect(await authorizer.authorize(inline)).toMatchObject({ decision: 'deny', denyKind: 'forbid', reasons: ['nobody'], policyVersion: v2 });

      const v3 = await push('@id("readers")\npermit (principal in Group::"readers", action == Action::"read", resource);');
      await authorizer.waitForVersion(v3);
      const { revision } = await client.request<{ revision: number }>('PUT', '/v1/authz/stores/app/entities', {
        body: [{ uid: bob, attrs: {}, parents: [{ type: 'Group', id: 'readers' }] }, { uid: { type: 'Group', id: 'readers' }, attrs: {}, parents: [] }],
      });
      await expect.poll(() => authorizer.entityRevision, { interval: 10, timeout: 5000 }).toBe(revision);
      expect(await authorizer.authorize({ principal: bob, action: read, resource: doc })).toMatchObject({ decision: 'allow', policyVersion: v3 });
      expect(updates).toEqual([v2, v3, v3]);
    } finally {
      authorizer.close();
    }
  }, 60_000);

  it('serves a workload of the tenant over mTLS (the seed policies let services ask), but not previews', async () => {
    const csr = await makeCsr();
    const id = 'spiffe://default.rampart.local/ns/shop/sa/api';
    const signed = await client.request<{ certificate: string; issuing_ca: string }>('POST', '/v1/pki/sign', { body: { csr: csr.pem, spiffe_id: id } });
    const workload = new RampartClient({
      addr: s.addr!,
      caPem: s.runtime.trustBundlePem,
      clientCert: { certPem: `${signed.certificate}${signed.issuing_ca}`, keyPem: csr.keyPem },
    });
    try {
      const authorizer = await createAuthorizer({ client: workload, store: 'app' });
      authorizer.close();
      const remote = await workload.request<{ decision: string }>('POST', '/v1/authz/stores/app/check', { body: { principal: bob, action: read, resource: doc } });
      expect(['allow', 'deny']).toContain(remote.decision);
      const preview = await workload.request('POST', '/v1/authz/stores/app/preview', { body: { policies: 'permit (principal, action, resource);' } }).catch((e: unknown) => e);
      expect(preview).toBeInstanceOf(RampartApiError);
      expect((preview as RampartApiError).code).toBe('authz.denied');
    } finally {
      workload.close();
    }
  }, 60_000);

  it('fails to start without a bundle rather than deciding with nothing', async () => {
    await expect(createAuthorizer({ client, store: 'empty' })).rejects.toSatisfy((e) => e instanceof RampartApiError && e.code === 'authz.store_empty');
  });
});
