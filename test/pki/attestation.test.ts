import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { type CryptoKey as JoseKey, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { RampartApiError, RampartClient } from '../../src/sdk/index.js';
import { TEST_DATABASES } from '../support/databases.js';
import { makeCsr, svidShape } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Node attestation: one-time join tokens (replays refused, also when two uses race) and
 * Kubernetes projected service-account tokens (each forgery or misuse refused with its own
 * code), and the agent API an attested agent reaches with its SVID: it obtains SVIDs only for
 * the entries registered under it. Every refusal: its code, nothing issued, an audit event.
 */
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = (r: LightMyRequestResponse) => r.json() as Record<string, unknown>;
const TD = 'spiffe://default.rampart.local';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'rampart';

interface Keys {
  readonly privateKey: JoseKey;
  readonly kid: string;
}

describe.each(TEST_DATABASES)('node attestation ($name)', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;
  let cluster: Keys;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-attest-'));
    const pair = await generateKeyPair('ES256');
    cluster = { privateKey: pair.privateKey, kid: 'cluster-key-1' };
    const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: cluster.kid, alg: 'ES256', use: 'sig' }] };
    // One attestor with the JWKS inline, one reading it from a file, as operators configure them.
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
    writeFileSync(
      join(dir, 'rampart.yaml'),
      [
        'k8s_attestors:',
        '  - cluster: prod',
        `    issuer: ${ISSUER}`,
        `    audience: ${AUDIENCE}`,
        `    jwks: ${JSON.stringify(jwks)}`,
        '  - cluster: staging',
        '    issuer: https://staging.example',
        `    audience: ${AUDIENCE}`,
        '    jwks_file: jwks.json',
        // Nothing listens on port 9: fetching the keys fails.
        '  - cluster: remote',
        '    issuer: https://remote.example',
        `    audience: ${AUDIENCE}`,
        '    jwks_uri: https://127.0.0.1:9/openid/v1/jwks',
      ].join('\n'),
    );
    s = await startTestServer({ database, clock: new ManualClock(Math.floor(Date.now() / 1000) * 1000), configFile: join(dir, 'rampart.yaml'), listen: true });
    admin = bearer(s.adminToken);
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const issuedCount = async () => Number((await s.runtime.database.db.selectFrom('pki_certificates').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const auditOf = (r: LightMyRequestResponse) => auditById(String(r.headers['x-request-id']));
  const auditById = async (requestId: string | undefined) => {
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(30).execute();
    const event = rows.map((row) => JSON.parse(row.payload) as Record<string, unknown>).find((e) => e.request_id === requestId);
    if (!event) throw new Error('no audit event for the request');
    return event;
  };
  const attest = (payload: Record<string, unknown>) => s.app.inject({ method: 'POST', url: '/v1/pki/agent/attest', payload });
  const newToken = async (payload: Record<string, unknown> = {}) => json(await s.app.inject({ method: 'POST', url: '/v1/pki/agent/tokens', headers: admin, payload })) as { token: string; id: string; spiffe_id: string };
  async function expectRefused(attempt: () => Promise<LightMyRequestResponse>, status: number, code: string) {
    const before = await issuedCount();
    const r = await attempt();
    expect({ status: r.statusCode, code: json(r).code }).toEqual({ status, code });
    expect(await issuedCount()).toBe(before);
    const outcome = status === 401 ? 'unauthenticated' : status === 403 ? 'denied' : status >= 500 ? 'failed' : 'invalid';
    expect(await auditOf(r)).toMatchObject({ action: 'pki:attest', outcome, error_code: code });
  }

  describe('join tokens', () => {
    it('attests an agent once: its SVID names the token, the token is stored only hashed', async () => {
      const created = await newToken({ ttl: '10m' });
      expect(created.token).toMatch(/^rjt\.jt_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
      expect(created.spiffe_id).toBe(`${TD}/rampart/agent/join_token/${created.id}`);
      const row = await s.runtime.database.db.selectFrom('pki_join_tokens').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain(created.token.split('.')[2]);

      const csr = await makeCsr();
      const r = await attest({ join_token: created.token, csr: csr.pem });
      expect(r.statusCode).toBe(200);
      const body = json(r) as { certificate: string; spiffe_id: string; selectors: string[] };
      expect(svidShape(body.certificate).uris).toEqual([created.spiffe_id]);
      expect(body.selectors).toEqual([]);
      expect(await auditOf(r)).toMatchObject({
        action: 'pki:attest',
        outcome: 'success',
        principal: { type: 'Rampart::Workload', id: created.spiffe_id, auth_method: 'attestation' },
        details: { method: 'join_token', join_token_id: created.id },
      });
      expect(JSON.stringify(await auditOf(r))).not.toContain(created.token);

      await expectRefused(() => attest({ join_token: created.token, csr: csr.pem }), 401, 'pki.join_token_replayed');
    });

    it('lets exactly one of two racing uses of a token succeed', async () => {
      for (let round = 0; round < 3; round++) {
        const created = await newToken();
        const before = await issuedCount();
        const [a, b] = await Promise.all([attest({ join_token: created.token, csr: (await makeCsr()).pem }), attest({ join_token: created.token, csr: (await makeCsr()).pem })]);
        const outcomes = [a, b].map((r) => (r.statusCode === 200 ? 'ok' : json(r).code)).sort();
        expect(outcomes).toEqual(['ok', 'pki.join_token_replayed']);
        expect(await issuedCount()).toBe(before + 1);
      }
    });

    it('grants a requested agent ID, only within the trust domain', async () => {
      const created = await newToken({ spiffe_id: `${TD}/agents/node-7` });
      const r = await attest({ join_token: created.token, csr: (await makeCsr()).pem });
      expect(json(r).spiffe_id).toBe(`${TD}/agents/node-7`);
      const bad = await s.app.inject({ method: 'POST', url: '/v1/pki/agent/tokens', headers: admin, payload: { spiffe_id: 'spiffe://acme.rampart.local/agent' } });
      expect(json(bad).code).toBe('pki.spiffe_id_forbidden');
    });

    it('refuses expired, unknown, tampered and missing evidence', async () => {
      const created = await newToken({ ttl: '1m' });
      const csr = (await makeCsr()).pem;
      const [, id, secret] = created.token.split('.');
      const flipped = `${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`;
      await expectRefused(() => attest({ join_token: `rjt.${id}.${flipped}`, csr }), 401, 'pki.join_token_invalid');
      await expectRefused(() => attest({ join_token: `rjt.jt_AAAAAAAAAAAAAAAA.${secret}`, csr }), 401, 'pki.join_token_invalid');
      await expectRefused(() => attest({ join_token: 'not a token', csr }), 401, 'pki.join_token_invalid');
      await expectRefused(() => attest({ csr }), 400, 'pki.attestation_invalid');
      await expectRefused(() => attest({ join_token: created.token, k8s_token: 'x', csr }), 400, 'pki.attestation_invalid');
      s.clock.advance(61_000);
      await expectRefused(() => attest({ join_token: created.token, csr }), 401, 'pki.join_token_expired');
      // Back to real time: later tests make real TLS handshakes, whose peers read the system clock.
      s.clock.advance(-61_000);
      // The expired attempt did not use it up: a fresh token is unaffected, and this one stays unused.
      const row = await s.runtime.database.db.selectFrom('pki_join_tokens').select('used_at').where('id', '=', created.id).executeTakeFirstOrThrow();
      expect(row.used_at).toBeNull();
    });

    it('refuses a malformed CSR without using up the token', async () => {
      const created = await newToken();
      await expectRefused(() => attest({ join_token: created.token, csr: 'garbage' }), 400, 'pki.csr_invalid');
      expect((await attest({ join_token: created.token, csr: (await makeCsr()).pem })).statusCode).toBe(200);
    });
  });

  describe('Kubernetes projected service-account tokens', () => {
    const nowS = () => Math.floor(s.clock.now().getTime() / 1000);
    const claims = { 'kubernetes.io': { namespace: 'rampart', serviceaccount: { name: 'agent', uid: 'sa-uid' }, pod: { name: 'agent-x7', uid: '5f0c8a2e-1111-4c1e-9d7a-0c3b2a1f0e9d' }, node: { name: 'node-1', uid: 'node-uid' } } };
    const psat = (o: { iss?: string; aud?: string; iat?: number; nbf?: number; exp?: number; key?: JoseKey; kid?: string; body?: Record<string, unknown> } = {}) =>
      new SignJWT(o.body ?? claims)
        .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? cluster.kid })
        .setIssuer(o.iss ?? ISSUER)
        .setAudience(o.aud ?? AUDIENCE)
        .setSubject('system:serviceaccount:rampart:agent')
        .setIssuedAt(o.iat ?? nowS())
        .setNotBefore(o.nbf ?? nowS())
        .setExpirationTime(o.exp ?? nowS() + 3600)
        .sign(o.key ?? cluster.privateKey);

    it('attests a pod: selectors from the kubernetes.io claims, an agent ID per cluster and node', async () => {
      const r = await attest({ k8s_token: await psat(), csr: (await makeCsr()).pem });
      expect(r.statusCode).toBe(200);
      const body = json(r) as { spiffe_id: string; selectors: string[]; certificate: string };
      expect(body.spiffe_id).toBe(`${TD}/rampart/agent/k8s_psat/prod/node-1`);
      expect(svidShape(body.certificate).uris).toEqual([body.spiffe_id]);
      expect(body.selectors).toEqual(['k8s:cluster:prod', 'k8s:node-name:node-1', 'k8s:ns:rampart', 'k8s:pod-name:agent-x7', `k8s:pod-uid:${claims['kubernetes.io'].pod.uid}`, 'k8s:sa:rampart/agent']);
      expect(await auditOf(r)).toMatchObject({ outcome: 'success', details: { method: 'k8s_psat' } });
      // The same token attests again (projected tokens are not one-time); the agent keeps one record.
      expect((await attest({ k8s_token: await psat(), csr: (await makeCsr()).pem })).statusCode).toBe(200);
    });

    it('reads a JWKS from a file; without a node claim the pod uid names the agent', async () => {
      const { node: _node, ...noNode } = claims['kubernetes.io'];
      const r = await attest({ k8s_token: await psat({ iss: 'https://staging.example', body: { 'kubernetes.io': noNode } }), csr: (await makeCsr()).pem });
      expect(json(r).spiffe_id).toBe(`${TD}/rampart/agent/k8s_psat/staging/${noNode.pod.uid}`);
    });

    it('refuses each attack with its own code, issuing nothing', async () => {
      const csr = (await makeCsr()).pem;
      const other = await generateKeyPair('ES256');
      const hmacKey = new TextEncoder().encode('the public key, misused as an HMAC secret, 32+ bytes');
      const cases: [string, () => Promise<string>, string][] = [
        ['expired', () => psat({ iat: nowS() - 7200, nbf: nowS() - 7200, exp: nowS() - 3600 }), 'pki.kube_token_expired'],
        ['not yet valid', () => psat({ nbf: nowS() + 3600, exp: nowS() + 7200 }), 'pki.kube_token_not_yet_valid'],
        ['issued in the future', () => psat({ iat: nowS() + 3600, exp: nowS() + 7200 }), 'pki.kube_token_not_yet_valid'],
        ['for another audience', () => psat({ aud: 'vault' }), 'pki.kube_token_audience_invalid'],
        ['from an unknown issuer', () => psat({ iss: 'https://evil.example' }), 'pki.kube_token_issuer_unknown'],
        ['forged with another key under the cluster kid', () => psat({ key: other.privateKey }), 'pki.kube_token_signature_invalid'],
        ['forged with another key and kid', () => psat({ key: other.privateKey, kid: 'attacker' }), 'pki.kube_token_signature_invalid'],
        ['unsigned (alg none)', async () => new UnsecuredJWT(claims).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(nowS()).setExpirationTime(nowS() + 3600).encode(), 'pki.kube_token_alg_forbidden'],
        ['HMAC-signed', () => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime(nowS() + 3600).sign(hmacKey), 'pki.kube_token_alg_forbidden'],
        ['without pod claims (a legacy token)', () => psat({ body: { 'kubernetes.io': { namespace: 'rampart', serviceaccount: { name: 'agent' } } } }), 'pki.kube_token_invalid'],
        ['not a JWT', async () => 'garbage', 'pki.kube_token_invalid'],
      ];
      for (const [what, make, code] of cases) {
        const token = await make();
        await expect.soft(expectRefused(() => attest({ k8s_token: token, csr }), 401, code), what).resolves.toBeUndefined();
      }
      // A signature over different claims: the payload was swapped after signing.
      const [h, , sig] = (await psat()).split('.');
      const swapped = Buffer.from(JSON.stringify({ ...claims, iss: ISSUER, aud: AUDIENCE, exp: nowS() + 3600, 'kubernetes.io': { ...claims['kubernetes.io'], namespace: 'kube-system' } })).toString('base64url');
      await expectRefused(() => attest({ k8s_token: `${h}.${swapped}.${sig}`, csr }), 401, 'pki.kube_token_signature_invalid');
    });

    it('fails closed when the issuer keys cannot be fetched', async () => {
      await expectRefused(async () => attest({ k8s_token: await psat({ iss: 'https://remote.example' }), csr: (await makeCsr()).pem }), 503, 'pki.kube_jwks_unavailable');
    });
  });

  describe('the agent API', () => {
    async function attestedAgent(payload: () => Promise<Record<string, unknown>>) {
      const csr = await makeCsr();
      const r = json(await attest({ ...(await payload()), csr: csr.pem })) as { certificate: string; spiffe_id: string };
      const client = new RampartClient({ addr: s.addr!, caPem: s.runtime.trustBundlePem, clientCert: { certPem: r.certificate, keyPem: csr.keyPem } });
      return { id: r.spiffe_id, client };
    }
    const register = async (spiffeId: string, parent: string) =>
      json(await s.app.inject({ method: 'POST', url: '/v1/pki/registrations', headers: admin, payload: { spiffe_id: spiffeId, parent, selectors: ['unix:uid:1000'], dns_names: ['api.pay.svc'], ttl: '5m' } })) as { id: string };

    it('gives an agent SVIDs for its own entries and those of a node selector it proved, and nothing else', async () => {
      const a = await attestedAgent(async () => ({ join_token: (await newToken()).token }));
      const b = await attestedAgent(async () => ({ join_token: (await newToken()).token }));
      const k = await attestedAgent(async () => ({ k8s_token: await new SignJWT({ 'kubernetes.io': { namespace: 'ns', serviceaccount: { name: 'sa' }, pod: { name: 'p', uid: 'pod-uid-9' } } }).setProtectedHeader({ alg: 'ES256', kid: cluster.kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h').sign(cluster.privateKey) }));
      try {
        const ofA = await register(`${TD}/ns/pay/sa/api`, a.id);
        const ofB = await register(`${TD}/ns/pay/sa/db`, b.id);
        const ofProd = await register(`${TD}/ns/web`, 'k8s:cluster:prod');

        const listed = await a.client.request<{ items: { id: string }[] }>('GET', '/v1/pki/agent/registrations');
        expect(listed.items.map((e) => e.id)).toEqual([ofA.id]);
        expect((await k.client.request<{ items: { id: string }[] }>('GET', '/v1/pki/agent/registrations')).items.map((e) => e.id)).toEqual([ofProd.id]);

        const csr = await makeCsr();
        const got = await a.client.request<{ svids: { registration_id: string; spiffe_id: string; certificate: string; expiration: number }[] }>('POST', '/v1/pki/agent/svids', { body: { requests: [{ registration_id: ofA.id, csr: csr.pem }] } });
        expect(got.svids).toHaveLength(1);
        const shape = svidShape(got.svids[0]!.certificate);
        expect(shape.uris).toEqual([`${TD}/ns/pay/sa/api`]);
        expect(shape.otherNames).toEqual(['dns:api.pay.svc']);
        expect(shape.cert.notAfter.getTime() - shape.cert.notBefore.getTime()).toBeLessThanOrEqual(5 * 60_000 + 60_000);
        expect((await k.client.request<{ svids: unknown[] }>('POST', '/v1/pki/agent/svids', { body: { requests: [{ registration_id: ofProd.id, csr: csr.pem }] } })).svids).toHaveLength(1);

        const before = await issuedCount();
        // Another agent's entry: Cedar denies (the parent is not the caller). A selector parent the
        // agent never proved: the entry is not the agent's at all. Each audited with its code.
        for (const [agent, entry, code, outcome] of [
          [a, ofB, 'authz.denied', 'denied'],
          [a, ofProd, 'pki.registration_not_found', 'invalid'],
          [k, ofA, 'authz.denied', 'denied'],
        ] as const) {
          const err = await agent.client.request('POST', '/v1/pki/agent/svids', { body: { requests: [{ registration_id: entry.id, csr: csr.pem }] } }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(RampartApiError);
          expect((err as RampartApiError).code).toBe(code);
          const event = await auditById((err as RampartApiError).requestId);
          expect(event).toMatchObject({ outcome, error_code: code, principal: { id: agent.id, auth_method: 'mtls' } });
        }
        // All or nothing: one foreign entry in a batch refuses the batch.
        const mixed = await a.client.request('POST', '/v1/pki/agent/svids', { body: { requests: [{ registration_id: ofA.id, csr: csr.pem }, { registration_id: ofB.id, csr: csr.pem }] } }).catch((e: unknown) => e);
        expect((mixed as RampartApiError).code).toBe('authz.denied');
        expect(await issuedCount()).toBe(before);
      } finally {
        for (const c of [a, b, k]) c.client.close();
      }
    });
  });
});
