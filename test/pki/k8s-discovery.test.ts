import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CryptoKey, type FetchImplementation, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { ConfigError, resolveServerConfig } from '../../src/core/config.js';
import { PkiError } from '../../src/core/errors.js';
import { attestK8sToken, type K8sAttestorOptions, type K8sAttestorSettings, k8sAttestors } from '../../src/pki/k8s-psat.js';
import { testServerTls } from '../support/pki.js';

/**
 * Kubernetes attestors that find the cluster's keys by OpenID Connect Discovery 1.0, against a
 * local HTTPS issuer serving `/.well-known/openid-configuration` and the JWK Set: the happy path,
 * the §4.3 issuer check, the https rule for `jwks_uri`, key rotation, and an unreachable issuer
 * failing closed with its own code.
 */

const AUDIENCE = 'rampart';
const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: Record<string, unknown>;
}
const newKey = async (kid: string): Promise<Key> => {
  const pair = await generateKeyPair('ES256');
  return { kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' } };
};

describe('Kubernetes attestors with OIDC discovery', () => {
  let base: string;
  let plainBase: string;
  let server: https.Server;
  let plain: http.Server;
  let dispatcher: Agent;
  let dir: string;
  /** What the issuer serves now; tests change it to rotate keys. */
  let served: Key[] = [];
  /** Whether `/flaky` serves its discovery document (else 503). */
  let flakyUp = true;
  /** Whether `/keys` serves the JWK Set (else 503). */
  let keysUp = true;
  const hits: string[] = [];

  beforeAll(async () => {
    const tls = await testServerTls('issuer', clock);
    const jwksHandler = (path: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      hits.push(`${path}${req.url}`);
      const url = req.url ?? '';
      const doc = (issuer: string, jwksUri: string) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ issuer, jwks_uri: jwksUri, id_token_signing_alg_values_supported: ['ES256'] }));
      if (url === '/good/.well-known/openid-configuration') doc(`${base}/good`, `${base}/keys`);
      else if (url === '/slash/.well-known/openid-configuration') doc(`${base}/slash/`, `${base}/keys`);
      else if (url === '/mismatch/.well-known/openid-configuration') doc(`${base}/good`, `${base}/keys`);
      else if (url === '/plain-keys/.well-known/openid-configuration') doc(`${base}/plain-keys`, `${plainBase}/keys`);
      else if (url === '/moved/.well-known/openid-configuration') res.writeHead(302, { location: `${base}/good/.well-known/openid-configuration` }).end();
      else if (url === '/not-json/.well-known/openid-configuration') res.end('<html>');
      else if (url === '/flaky/.well-known/openid-configuration') {
        if (flakyUp) doc(`${base}/flaky`, `${base}/keys`);
        else res.writeHead(503).end();
      } else if (url === '/endless/.well-known/openid-configuration') {
        // No content-length, and a body that never ends: only a byte cap stops reading it.
        res.setHeader('content-type', 'application/json').write('{"issuer":"');
        const pump = () => {
          while (!res.destroyed && res.write('x'.repeat(16_384)));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
      }
      else if (url === '/keys' && !keysUp) res.writeHead(503).end();
      else if (url === '/keys') res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: served.map((k) => k.jwk) }));
      else res.writeHead(404).end();
    };
    server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, jwksHandler('https'));
    plain = http.createServer(jwksHandler('http'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    plainBase = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    dispatcher = new Agent({ connect: { ca: tls.caPem } });
    dir = mkdtempSync(join(tmpdir(), 'rampart-k8s-discovery-'));
  });
  afterAll(async () => {
    await dispatcher?.close();
    server?.close();
    plain?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The issuer's private CA is trusted the way an operator would trust it: by the fetch used. */
  const fetchTrustingIssuer: FetchImplementation = (url, init) =>
    undiciFetch(url, { method: init.method, redirect: init.redirect, signal: init.signal, headers: Object.fromEntries(init.headers), dispatcher }) as unknown as Promise<Response>;
  const attestorFor = (issuer: string, options: K8sAttestorOptions = {}) => {
    const settings: K8sAttestorSettings = { cluster: 'prod', tenant: 'default', issuer, audience: AUDIENCE, jwks: undefined, jwksFile: undefined, jwksUri: undefined };
    return k8sAttestors([settings], { fetch: fetchTrustingIssuer, clock, ...options });
  };
  const psat = (issuer: string, key: Key) =>
    new SignJWT({
      'kubernetes.io': { namespace: 'rampart', serviceaccount: { name: 'agent', uid: 'sa-1' }, pod: { name: 'agent-x', uid: 'pod-1' }, node: { name: 'node-1', uid: 'n-1' } },
    })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setIssuedAt(Math.floor(clock.now().getTime() / 1000))
      .setExpirationTime(Math.floor(clock.now().getTime() / 1000) + 600)
      .sign(key.privateKey);
  const codeOf = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PkiError);
    return (err as PkiError).code;
  };

  it('discovers jwks_uri from the issuer, verifies the token, and caches both the document and the keys', async () => {
    const k1 = await newKey('k1');
    served = [k1];
    hits.length = 0;
    const attestors = attestorFor(`${base}/good`);
    const attested = await attestK8sToken(attestors, await psat(`${base}/good`, k1), clock);
    expect(attested.agentPath).toBe('/rampart/agent/k8s_psat/prod/node-1');
    expect(attested.selectors).toContain('k8s:sa:rampart/agent');
    await attestK8sToken(attestors, await psat(`${base}/good`, k1), clock);
    expect(hits).toEqual(['https/good/.well-known/openid-configuration', 'https/keys']);

    // The document is read again after the rediscovery period (the injected clock moved), in the
    // background: the token verifies against the keys already held.
    clock.advance(86_400_000);
    await attestK8sToken(attestors, await psat(`${base}/good`, k1), clock);
    await vi.waitFor(() => expect(hits.filter((h) => h.endsWith('openid-configuration'))).toHaveLength(2));
  });

  it('keeps the last good document while rereads fail, retries with backoff, and fails closed after 7 days', async () => {
    const k1 = await newKey('k1');
    served = [k1];
    flakyUp = true;
    const issuer = `${base}/flaky`;
    const documents = () => hits.filter((h) => h === 'https/flaky/.well-known/openid-configuration').length;
    hits.length = 0;
    const attestors = attestorFor(issuer);
    await attestK8sToken(attestors, await psat(issuer, k1), clock);
    expect(documents()).toBe(1);

    flakyUp = false;
    clock.advance(86_400_000);
    // Due for a reread, which fails in the background: the token still verifies.
    await attestK8sToken(attestors, await psat(issuer, k1), clock);
    await vi.waitFor(() => expect(documents()).toBe(2));
    await attestK8sToken(attestors, await psat(issuer, k1), clock);
    // The next read waits 10 s after the failure, the one after that 20 s: tokens meanwhile fetch nothing.
    clock.advance(9_000);
    await attestK8sToken(attestors, await psat(issuer, k1), clock);
    expect(documents()).toBe(2);
    clock.advance(1_000);
    await attestK8sToken(attestors, await psat(issuer, k1), clock);
    await vi.waitFor(() => expect(documents()).toBe(3));
    clock.advance(19_000);
    await attestK8sToken(attestors, await psat(issuer, k1), clock);
    expect(documents()).toBe(3);

    // Seven days after the last good read, the old document is no longer trusted.
    clock.advance(6 * 86_400_000);
    expect(await codeOf(attestK8sToken(attestors, await psat(issuer, k1), clock))).toBe('pki.kube_discovery_unavailable');
    const failures = documents();
    expect(await codeOf(attestK8sToken(attestors, await psat(issuer, k1), clock))).toBe('pki.kube_discovery_unavailable');
    expect(documents()).toBe(failures);

    // Back up: the first token after the backoff window reads it and verifies.
    flakyUp = true;
    clock.advance(300_000);
    expect((await attestK8sToken(attestors, await psat(issuer, k1), clock)).agentPath).toBe('/rampart/agent/k8s_psat/prod/node-1');
    expect(documents()).toBe(failures + 1);
  });

  it('keeps the last fetched JWK Set while the issuer is down, refetching with backoff, for up to 7 days', async () => {
    const k1 = await newKey('k1');
    served = [k1];
    keysUp = true;
    const fetched: string[] = [];
    const settings: K8sAttestorSettings = { cluster: 'prod', tenant: 'default', issuer: 'https://jwks-only.example', audience: AUDIENCE, jwks: undefined, jwksFile: undefined, jwksUri: `${base}/keys` };
    // jose's own cache is made to expire at once, so every verification would fetch.
    const attestors = k8sAttestors([settings], { fetch: (url, init) => (fetched.push(url), fetchTrustingIssuer(url, init)), clock, jwksMaxAgeMs: 0 });
    const attest = async () => attestK8sToken(attestors, await psat(settings.issuer, k1), clock);
    try {
      await attest();
      expect(fetched).toHaveLength(1);
      keysUp = false;
      expect((await attest()).agentPath).toBe('/rampart/agent/k8s_psat/prod/node-1');
      expect(fetched).toHaveLength(2);
      for (let i = 0; i < 5; i++) await attest(); // within the 10 s after the failure: no fetch
      expect(fetched).toHaveLength(2);
      // A key the issuer never published still fails against the kept set.
      expect(await codeOf(attestK8sToken(attestors, await psat(settings.issuer, await newKey('k1')), clock))).toBe('pki.kube_token_signature_invalid');
      clock.advance(10_000);
      await attest();
      expect(fetched).toHaveLength(3);
      clock.advance(7 * 86_400_000);
      expect(await codeOf(attest())).toBe('pki.kube_jwks_unavailable');
      keysUp = true;
      clock.advance(300_000);
      await attest();
    } finally {
      keysUp = true;
    }
  });

  it('stops reading a discovery document without content-length once it passes 64 KiB', async () => {
    const k1 = await newKey('k1');
    const issuer = `${base}/endless`;
    const err = await attestK8sToken(attestorFor(issuer), await psat(issuer, k1), clock).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'pki.kube_discovery_unavailable' });
    expect(((err as PkiError).cause as Error).message).toBe('the document is too large');
  });

  it('refuses a document naming another issuer, even one differing by a trailing slash (OIDC Discovery §4.3)', async () => {
    const k1 = await newKey('k1');
    served = [k1];
    expect(await codeOf(attestK8sToken(attestorFor(`${base}/mismatch`), await psat(`${base}/mismatch`, k1), clock))).toBe('pki.kube_discovery_invalid');
    expect(await codeOf(attestK8sToken(attestorFor(`${base}/slash`), await psat(`${base}/slash`, k1), clock))).toBe('pki.kube_discovery_invalid');
    // A redirect is not followed: the document must come from the issuer itself.
    expect(await codeOf(attestK8sToken(attestorFor(`${base}/moved`), await psat(`${base}/moved`, k1), clock))).toBe('pki.kube_discovery_unavailable');
    expect(await codeOf(attestK8sToken(attestorFor(`${base}/not-json`), await psat(`${base}/not-json`, k1), clock))).toBe('pki.kube_discovery_unavailable');
  });

  it('refuses an http jwks_uri unless the test-only loopback flag allows it', async () => {
    const k1 = await newKey('k1');
    served = [k1];
    const issuer = `${base}/plain-keys`;
    expect(await codeOf(attestK8sToken(attestorFor(issuer), await psat(issuer, k1), clock))).toBe('pki.kube_discovery_invalid');
    const allowed = attestorFor(issuer, { allowLoopbackHttp: true });
    expect((await attestK8sToken(allowed, await psat(issuer, k1), clock)).selectors).toContain('k8s:cluster:prod');
    expect(() => k8sAttestors([{ cluster: 'x', tenant: 'default', issuer: 'http://10.0.0.1', audience: AUDIENCE, jwks: undefined, jwksFile: undefined, jwksUri: undefined }], { allowLoopbackHttp: true })).toThrow(/https/);
  });

  it('picks up a rotated signing key by refetching the JWK Set; a key the issuer never published still fails', async () => {
    const k1 = await newKey('k1');
    const k2 = await newKey('k2');
    served = [k1];
    const attestors = attestorFor(`${base}/good`, { jwksCooldownMs: 0 });
    await attestK8sToken(attestors, await psat(`${base}/good`, k1), clock);
    served = [k1, k2]; // the cluster rotates its service-account signing key
    hits.length = 0;
    expect((await attestK8sToken(attestors, await psat(`${base}/good`, k2), clock)).agentPath).toBe('/rampart/agent/k8s_psat/prod/node-1');
    expect(hits).toEqual(['https/keys']);
    const forged = await newKey('k2'); // same kid, another key
    expect(await codeOf(attestK8sToken(attestors, await psat(`${base}/good`, forged), clock))).toBe('pki.kube_token_signature_invalid');
  });

  it('fails closed with its own code when the issuer cannot be reached, and tries again only after a cooldown', async () => {
    const k1 = await newKey('k1');
    served = [k1];
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = `https://127.0.0.1:${port}`;
    const fetched: string[] = [];
    const attestors = attestorFor(unreachable, { fetch: (url, init) => (fetched.push(url), fetchTrustingIssuer(url, init)) });
    expect(await codeOf(attestK8sToken(attestors, await psat(unreachable, k1), clock))).toBe('pki.kube_discovery_unavailable');
    // Unauthenticated attestations while the issuer is down do not each cause a fetch.
    for (let i = 0; i < 5; i++) expect(await codeOf(attestK8sToken(attestors, await psat(unreachable, k1), clock))).toBe('pki.kube_discovery_unavailable');
    expect(fetched).toHaveLength(1);
    clock.advance(10_000);
    expect(await codeOf(attestK8sToken(attestors, await psat(unreachable, k1), clock))).toBe('pki.kube_discovery_unavailable');
    expect(fetched).toHaveLength(2);
    // An issuer whose certificate is not trusted is as unreachable (global fetch, without the issuer's CA).
    expect(await codeOf(attestK8sToken(k8sAttestors([{ cluster: 'p', tenant: 'default', issuer: `${base}/good`, audience: AUDIENCE, jwks: undefined, jwksFile: undefined, jwksUri: undefined }]), await psat(`${base}/good`, k1), clock))).toBe('pki.kube_discovery_unavailable');
  });

  it('accepts an attestor configured with an https issuer alone, and refuses one whose issuer is not https', () => {
    const config = (entry: string) => {
      writeFileSync(join(dir, 'rampart.yaml'), `k8s_attestors:\n  - ${entry}\n`);
      return resolveServerConfig({ config: join(dir, 'rampart.yaml'), dataDir: dir }, {});
    };
    expect(config('{cluster: a, issuer: "https://oidc.example/id/1", audience: rampart}').k8sAttestors[0]).toMatchObject({ issuer: 'https://oidc.example/id/1', jwks: undefined, jwksFile: undefined, jwksUri: undefined });
    expect(() => config('{cluster: a, issuer: "http://oidc.example", audience: rampart}')).toThrow(ConfigError);
  });
});
