import 'reflect-metadata';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { makeCsr } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';

interface Signed {
  certificate: string;
  issuing_ca: string;
}

/** GET /v1/tokens/self over mTLS presenting `chain` (leaf first); the answer's status and code. */
function callWith(s: TestServer, chain: string, key: string): Promise<{ status: number; code: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${s.addr}/v1/tokens/self`, { ca: s.runtime.trustBundlePem, cert: chain, key, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { code?: string }).code }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the listener trusts a rotated-in root without a restart', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ listen: true, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000) });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('authenticates a workload whose chain ends at the new root, without the cross-certificate', async () => {
    const admin = { authorization: `Bearer ${s.adminToken}` };
    const oldIntermediate = s.runtime.ca.intermediate.certificate.toString('pem');
    const rotated = await s.app.inject({ method: 'POST', url: '/v1/pki/ca/rotate', headers: admin, payload: { target: 'root', propagation_delay: '0s' } });
    expect(rotated.statusCode, rotated.body).toBe(200);
    s.clock.advance(1_500);
    const csr = await makeCsr();
    const signed = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: admin, payload: { csr: csr.pem, spiffe_id: 'spiffe://default.rampart.local/ns/pay/sa/api', ttl: '10m' } });
    expect(signed.statusCode, signed.body).toBe(200);
    const svid = signed.json() as Signed;
    // Signed by the new intermediate, under the new root. (Nothing was issued under the old
    // intermediate, so it and the old root may already be retired: the chain may lack the cross.)
    expect(svid.issuing_ca.trim()).not.toBe(oldIntermediate.trim());

    // Leaf and new intermediate only: this chains to the new root, which the listener must now trust.
    const answer = await callWith(s, `${svid.certificate.trim()}\n${svid.issuing_ca.trim()}\n`, csr.keyPem);
    expect(answer.code).not.toBe('auth.client_cert_untrusted');
    expect(answer.status).not.toBe(401);
  });
});
